"""PHP applications in a sandbox: a rootfs that holds nothing but the site,
with credential, mount and pid namespaces. The runtime (opened by main
outside the rootfs) must find libphp and its libraries, PHP's extensions,
php.ini and conf.d, and the time zone data through the language_deps
automount, and see nothing else of the host."""

import json

import iso_helpers as ih
import warren_helpers as wh

PROBE = r'''<?php
$host = @file_get_contents(getenv("HOST_FILE"));
echo json_encode([
    "ext" => get_loaded_extensions(),
    "ini" => php_ini_loaded_file(),
    "scanned" => php_ini_scanned_files() !== false,
    "tz" => date_default_timezone_get(),
    "paris" => (new DateTime("2026-07-01 12:00", new DateTimeZone("Europe/Paris")))->format("P"),
    "root" => array_values(array_diff(scandir("/"), [".", ".."])),
    "host_file" => $host === false ? null : strlen($host),
    "uid" => posix_getuid(),
    "pid" => getmypid(),
    "cwd" => getcwd(),
]);
'''


def test_php_in_an_empty_rootfs(warren_factory):
    with ih.app_in_rootfs(warren_factory, {"srv/site/probe.php": PROBE}, "php", {
            "type": "php", "root": "/srv/site"}) as (w, port):
        rep = json.loads(ih.fetch(port, "/probe.php"))
        # extensions from conf.d (symlinks into mods-available) and php.ini
        assert "Zend OPcache" in rep["ext"] and "json" in rep["ext"], rep["ext"]
        assert rep["ini"] == "/etc/php/8.2/embed/php.ini"
        assert rep["scanned"] is True
        # tzdata from the host's /usr/share/zoneinfo: summer time in Paris
        assert rep["paris"] == "+02:00", rep
        assert "Invalid date.timezone" not in w.log()
        # only the rootfs and what language_deps bound into it
        assert "srv" in rep["root"]
        assert not {"home", "root", "var", "boot"} & set(rep["root"]), rep["root"]
        assert rep["host_file"] is None
        assert rep["uid"] == wh.NOBODY_UID
        # own pid namespace: prototype 1, zygote 2, its short-lived middle
        # child 3, the worker 4
        assert rep["pid"] == 4, rep["pid"]
        assert rep["cwd"] == "/srv/site"
