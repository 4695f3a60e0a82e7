# warren-ruby's Rack glue: what the runtime evaluates before the rackup file
# (it travels inside the program, build/gen/glue_rb.c). The C side
# (rack.c) gives Warren::Channel (accept) and Warren::Request (the env, the
# body in, the response out, each call on the channel made without the
# GVL); everything Rack asks for is here.
module Warren
  BLOCK = 65_536              # bytes read at a time: body in, files out

  # Warren::ClientGone (rack.c) is raised by a Warren::Request call when
  # the client went away: the application unwinds, nothing is logged (the
  # router knows).

  # rack.errors: each line to the error log. Text without its newline
  # waits (per thread) for the rest, as in a line-buffered IO; flush, or
  # the end of the request, logs what waits.
  class Errors
    def write(text)
      text = text.to_s
      pending = (Thread.current[:warren_errors] ||= String.new)
      pending << text
      if (nl = pending.rindex("\n"))
        Warren.log(pending.slice!(0, nl + 1))
      end
      text.bytesize
    end

    def puts(*args)
      write("\n") if args.empty?
      args.flatten.each { |a| s = a.to_s; write(s.end_with?("\n") ? s : "#{s}\n") }
      nil
    end

    def print(*args)
      args.each { |a| write(a) }
      nil
    end

    def <<(text)
      write(text)
      self
    end

    def flush
      pending = Thread.current[:warren_errors]
      Warren.log(pending.slice!(0, pending.bytesize)) if pending && !pending.empty?
      self
    end
  end

  # rack.input (Rack 2: rewindable). The body comes from the router as the
  # application reads it; what was read is kept for rewind, so at most
  # the body (limited by max_body_size) is held.
  class Input
    def initialize(req)
      @req = req
      @buf = String.new(encoding: Encoding::BINARY)
      @pos = 0
      @eof = false
    end

    def read(length = nil, outbuf = nil)
      if length.nil?
        fill until @eof
        data = @buf.byteslice(@pos, @buf.bytesize - @pos)
      else
        raise ArgumentError, "negative length #{length} given" if length.negative?

        fill while !@eof && @buf.bytesize - @pos < length
        data = @pos >= @buf.bytesize && length.positive? ? nil : @buf.byteslice(@pos, length)
      end
      @pos += data.bytesize if data
      return data unless outbuf

      data ? outbuf.replace(data) : outbuf.clear
      data && outbuf
    end

    def gets
      until (nl = @buf.index("\n", @pos)) || @eof
        fill
      end
      return nil if @pos >= @buf.bytesize

      stop = nl ? nl + 1 : @buf.bytesize
      line = @buf.byteslice(@pos, stop - @pos)
      @pos = stop
      line
    end

    def each
      while (line = gets)
        yield line
      end
    end

    def rewind
      @pos = 0
      0
    end

    def close; end

    private

    def fill
      chunk = @req.read(BLOCK)
      chunk ? @buf << chunk : @eof = true
    end
  end

  # The stream a Rack 3 streaming body (one with #call, not #each) writes
  # to. Reading is not offered: there is no hijacking (rack.hijack? false).
  class Stream
    def initialize(req)
      @req = req
      @closed = false
    end

    def write(data)
      raise IOError, "closed stream" if @closed

      @req.write(data.to_s)
      data.to_s.bytesize
    end

    def <<(data)
      write(data)
      self
    end

    def flush
      self
    end

    def read(*)
      nil
    end

    def close_read; end

    def close
      @closed = true
      nil
    end
    alias close_write close

    def closed?
      @closed
    end
  end

  # hooks (Unit's): the file is evaluated in a DSL object once, in the
  # prototype; the blocks run in each worker and in each serving thread.
  HOOKS = { worker_boot: [], worker_shutdown: [], thread_boot: [], thread_shutdown: [] }

  class HookFile
    HOOKS.each_key do |event|
      define_method("on_#{event}") { |&block| HOOKS[event] << block }
    end
  end

  class << self
    attr_reader :app

    # In the prototype: the hooks, Rack, the rackup file.
    def load(script, hooks)
      HookFile.new.instance_eval(File.read(hooks), hooks) if hooks
      require "rack"
      require "uri"     # loaded under every Rack server; Rack::Lint counts on it
      app = Rack::Builder.parse_file(script)
      app = app.first if app.is_a?(Array)     # Rack 2: [app, options]
      raise "#{script} did not build an application (it has no #call)" unless app.respond_to?(:call)

      @app = app
      nil
    end

    def worker_boot
      HOOKS[:worker_boot].each(&:call)
    end

    # In a worker: serve until the router closes the channel, from as many
    # Ruby threads as "threads" (the main one alone when 1).
    def run(channel, threads, base_env)
      if threads == 1
        serve(channel, base_env)
      else
        Array.new(threads) { Thread.new { serve(channel, base_env) } }.each(&:join)
      end
    ensure
      HOOKS[:worker_shutdown].each(&:call)
    end

    private

    def serve(channel, base_env)
      HOOKS[:thread_boot].each(&:call)
      while (req = channel.accept)
        handle(req, base_env)
      end
    ensure
      HOOKS[:thread_shutdown].each(&:call)
    end

    def handle(req, base_env)
      env = req.env(base_env)
      env["rack.input"] = Input.new(req)
      status, headers, body = @app.call(env)
      respond(req, status, headers, body)
      req.finish
    rescue ClientGone
      req.abort
    rescue SystemExit, SignalException
      req.abort
      raise
    rescue Exception => e # rubocop:disable Lint/RescueException -- the worker serves on
      failed(req, e)
    ensure
      base_env["rack.errors"].flush     # what no newline ended
    end

    def respond(req, status, headers, body)
      unless headers.respond_to?(:each) && (body.respond_to?(:each) || body.respond_to?(:call))
        raise TypeError, "the application's response is not [status, headers, body]"
      end

      req.head(Integer(status), flat_headers(headers))
      begin
        send_body(req, body)
      ensure
        body.close if body.respond_to?(:close)
      end
    end

    # Rack 2: a value with "\n" is several fields; Rack 3: an Array is.
    def flat_headers(headers)
      flat = []
      headers.each do |name, value|
        name = name.to_s
        next if name.start_with?("rack.")

        (value.is_a?(Array) ? value : value.to_s.split("\n")).each { |v| flat << name << v.to_s }
      end
      flat
    end

    def send_body(req, body)
      if body.is_a?(Array)
        last = body.size - 1
        body.each_with_index { |chunk, i| i == last ? req.write_end(chunk) : req.write(chunk) }
      elsif body.is_a?(IO)
        while (chunk = body.read(BLOCK))
          req.write(chunk)
        end
      elsif body.respond_to?(:each)
        body.each { |chunk| req.write(chunk) }
      else
        body.call(Stream.new(req))      # Rack 3's streaming body
      end
    end

    def failed(req, error)
      where = "#{req.http_method} #{req.target}"
      Warren.log("the application failed (#{where})" \
                 "#{req.head_sent? ? ', response cut' : ', answered 500'}: " \
                 "#{error.class}: #{error.message}\n" \
                 "#{(error.backtrace || []).first(10).map { |l| "  #{l}\n" }.join}")
      req.head_sent? ? req.abort : req.error
    end
  end
end
