"""HTTP: the JSON API, the 2015 routes and the page, as Flask blueprints."""
