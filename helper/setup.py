"""Builds the optional compiled scan (the package works without it: see logwatch/scan.py)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "plex_security_helper.logwatch._fastscan",
            ["plex_security_helper/logwatch/_fastscan.c"],
            extra_compile_args=["-O2"],
            optional=True,
        )
    ]
)
