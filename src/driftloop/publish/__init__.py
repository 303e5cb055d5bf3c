"""Share a study: ``driftloop publish`` writes runs and sweeps as a static site (pages, thinned frames, an
animation per chain, bundles of curves, posters at social sizes, a sweep's bias card) that opens from any
folder or static host, offline."""

from __future__ import annotations

from driftloop.publish.poster import poster
from driftloop.publish.site import Site, build_site, parse_every, write_site

__all__ = ["Site", "build_site", "parse_every", "poster", "write_site"]
