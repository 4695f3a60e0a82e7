"""Needs a module that only the test's virtual environment has."""
import sys

import venv_only


def application(environ, start_response):
    start_response("200 OK", [])
    return [("%s|%s" % (venv_only.MARK, sys.prefix)).encode()]
