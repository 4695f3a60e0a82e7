# make run's Ruby demo (type "ruby"): a Rack application.
run lambda { |env|
  [200, { "Content-Type" => "text/plain" },
   ["Hello from a Warren Ruby worker (Ruby #{RUBY_VERSION}, pid #{Process.pid})\n",
    "#{env['REQUEST_METHOD']} #{env['REQUEST_URI']}\n"]]
}
