"""citystack: a web stack for urban data.

A database of geolocated city data, a Flask server that answers a map's
view requests and runs analyses on the points in view, and a browser page
with a Leaflet map and D3 overlays.
"""

__version__ = "0.1.0"
