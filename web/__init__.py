"""The browser pages: each page's body in web/pages, scripts and the stylesheets in
web/static. api/layout.py lists the pages and draws their head and navigation; api/pages.py
serves them. Every asset is local (a 911 center's network is closed).
"""
