# make run's Perl demo (type "perl"): a PSGI application.
use strict;
use warnings;

sub {
    my ($env) = @_;
    my $body = sprintf("Hello from a Warren Perl worker (Perl %vd, pid %d)\n%s %s\n",
                       $^V, $$, $env->{REQUEST_METHOD}, $env->{REQUEST_URI});
    return [200, ['Content-Type' => 'text/plain'], [$body]];
};
