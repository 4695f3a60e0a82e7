# warren-perl's PSGI glue: what the runtime evaluates in every interpreter
# before the script (it travels inside the program, build/gen/glue_pl.c).
# The C side (psgi.c) builds the env hash and calls Warren::_serve for each
# request; the XS functions Warren::_head, _write, _write_last, _end and
# Warren::Input::read move bytes to and from libwarren. A request handle
# ($r) is a blessed reference to the request's C state, emptied when the
# request is over: a handle kept past its request fails cleanly.
# line 9 "(warren-perl glue.pl)"
package Warren;
use strict;
use warnings;
no warnings 'once';
use IO::Handle ();
use Scalar::Util ();

our $app;          # the application, a code reference
our %_base_env;    # the keys every env has (psgi.c)

# `do FILE` of the script, once, in the prototype.
sub _load {
    my ($file) = @_;
    # Unit's "script" is a path, never looked up in @INC.
    $file = "./$file" unless $file =~ m{^\.{0,2}/};
    open(my $fh, '<', $file) or die "cannot open \"$file\": $!\n";
    close $fh;
    local $@;
    my $value = do $file;
    die "$file: $@" if $@;
    if (Scalar::Util::blessed($value) && $value->can('call')) {
        my $object = $value;
        $value = sub { $object->call(@_) };
    }
    die "$file did not return a code reference (the last value of a PSGI"
        . " script is the application)\n"
        unless ref $value eq 'CODE';
    $app = $value;
    return;
}

sub _check {
    my ($res, $delayed) = @_;
    die "the application's response is not an array reference"
        . " [status, headers, body]\n"
        unless ref $res eq 'ARRAY'
            && (@$res == 3 || ($delayed && @$res == 2));
    die "the response's headers are not an array reference\n"
        unless ref $res->[1] eq 'ARRAY';
    die "the response's headers are not name, value pairs\n"
        if @{ $res->[1] } % 2;
    return;
}

# A body: an array of strings, or an object with getline and close (a real
# filehandle is read in blocks, not lines: PSGI lets a server do so).
sub _body {
    my ($r, $body) = @_;
    if (ref $body eq 'ARRAY') {
        Warren::_write_last($r, $body);
        return;
    }
    die "the response's body is neither an array reference nor an object"
        . " with getline\n"
        unless Scalar::Util::blessed($body) || ref $body eq 'GLOB';
    my $type = Scalar::Util::reftype($body) // '';
    local $/ = $type eq 'GLOB' || $type eq 'IO' ? \65536 : $/;
    my $ok = eval {
        while (defined(my $chunk = $body->getline)) {
            Warren::_write($r, $chunk);
        }
        1;
    };
    my $error = $@;
    $body->close;
    die $error unless $ok;
    Warren::_end($r);
    return;
}

# One request; what psgi.errors holds of an unfinished line is logged at
# its end, whatever happened.
sub _serve {
    my ($env, $r) = @_;
    my $ok = eval { _respond($env, $r); 1 };
    my $error = $@;
    $_base_env{'psgi.errors'}->flush;
    die $error unless $ok;
    return;
}

sub _respond {
    my ($env, $r) = @_;
    my $res = $app->($env);
    if (ref $res ne 'CODE') {
        _check($res, 0);
        Warren::_head($r, $res->[0], $res->[1]);
        _body($r, $res->[2]);
        return;
    }
    my $responded = 0;
    $res->(sub {
        my ($res) = @_;
        die "the responder was called twice\n" if $responded++;
        _check($res, 1);
        Warren::_head($r, $res->[0], $res->[1]);
        return bless [$r], 'Warren::Writer' if @$res == 2;
        _body($r, $res->[2]);
        return;
    });
    die "the application returned without calling the responder"
        . " (psgi.nonblocking is false)\n"
        unless $responded;
    return;
}

package Warren::Writer;

sub write { Warren::_write($_[0][0], $_[1]); return }
sub close { Warren::_end($_[0][0]); return }

package Warren::Input;

# read is XS (psgi.c): read($buf, $len [, $offset])
sub seek  { return 0 }
sub close { return 1 }

package Warren::Errors;

# Each line to the error log (Warren::_log, XS). Text without its newline
# waits in the object (one per interpreter, so per thread) for the rest of
# its line, as in a line-buffered handle; flush, or the end of the
# request, logs what waits.
sub print {
    my $self = shift;
    $$self .= join('', map { $_ // '' } @_);
    my $nl = rindex($$self, "\n");
    Warren::_log(substr($$self, 0, $nl + 1, '')) if $nl >= 0;
    return 1;
}
sub printf { my $self = shift; my $fmt = shift; return $self->print(sprintf($fmt, @_)) }
sub flush {
    my $self = shift;
    Warren::_log(substr($$self, 0, length $$self, '')) if length($$self // '');
    return 1;
}

1;
