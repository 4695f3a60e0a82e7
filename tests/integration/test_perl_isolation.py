"""Perl applications in a sandbox: a rootfs that holds nothing but the
script, with credential, mount and pid namespaces. The runtime (opened by
main outside the rootfs) must find libperl and its libraries and Perl's
module directories (pure Perl ones such as JSON::PP, and XS ones such as
Digest::SHA and POSIX, with their .so) through the language_deps automount,
and see nothing else of the host."""

import hashlib
import json
import os

import pytest

import iso_helpers as ih
import warren_helpers as wh

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="isolation needs root")

PROBE = r'''use strict;
use warnings;
use Cwd ();
use Digest::SHA ();
use JSON::PP ();
use POSIX ();

my $loaded = $$;

sub {
    my $env = shift;
    opendir my $dh, "/" or die "opendir /: $!";
    my @root = sort grep { !/^\.\.?$/ } readdir $dh;
    closedir $dh;
    my $host = $ENV{HOST_FILE};
    my $host_readable = (defined $host && open my $fh, '<', $host) ? 1 : 0;
    my $out = JSON::PP->new->canonical->encode({
        sha => Digest::SHA::sha256_hex("warren"),
        floor => POSIX::floor(2.5),
        root => \@root,
        host_file => $host_readable,
        uid => $<,
        pid => $$,
        loaded => $loaded,
        cwd => Cwd::getcwd(),
        script => __FILE__,
        inc => [grep { !ref } @INC],
    });
    return [200, ['Content-Type' => 'application/json'], [$out]];
};
'''


def test_perl_in_an_empty_rootfs(warren_factory):
    with ih.app_in_rootfs(warren_factory, {"srv/app/app.psgi": PROBE}, "pl", {
            "type": "perl", "script": "/srv/app/app.psgi",
            "working_directory": "/srv/app"}) as (w, port):
        rep = json.loads(ih.fetch(port, "/"))
        # XS modules (their .so under Perl's arch directories) and pure Perl ones
        assert rep["sha"] == hashlib.sha256(b"warren").hexdigest(), rep
        assert rep["floor"] == 2, rep
        # only the rootfs and what language_deps bound into it
        assert "srv" in rep["root"], rep["root"]
        assert not {"home", "root", "var", "boot"} & set(rep["root"]), rep["root"]
        assert rep["host_file"] == 0, rep
        assert rep["uid"] == wh.NOBODY_UID, rep
        # own pid namespace: small pids, the worker's not the loader's
        assert rep["pid"] < 10 and rep["loaded"] < 10 and rep["pid"] != rep["loaded"], rep
        assert (rep["cwd"], rep["script"]) == ("/srv/app", "/srv/app/app.psgi"), rep
