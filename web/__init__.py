"""The browser pages: HTML shells in web/pages, scripts and the stylesheet in web/static.

Served by api/pages.py; every asset is local (a 911 center's network is closed).
"""
