"""Who may use the drawing board: the Host names it answers to, and no other site's pages.

A web page the user visits elsewhere could otherwise use the board through the user's browser:
- by DNS rebinding: the page's own domain is made to resolve to 127.0.0.1, so the browser sends
  it to the board as a same-origin request, with that domain in the Host header. The board
  answers only to the names it was started for (an IP address cannot be rebound, so when it
  listens on every address, any address literal is fine).
- by a cross-site POST (a form or a fetch without CORS), which browsers send with the page's
  Origin and with `Sec-Fetch-Site: cross-site` (or `same-site` for another port of the same
  host). Only the board's own page may post; programs that send neither header (curl, scripts)
  are not a browser acting for a page, and are served.
"""

import ipaddress
import socket
from dataclasses import dataclass

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
EVERY_ADDRESS = frozenset({"", "0.0.0.0", "::"})
# Sec-Fetch-Site values of requests a page of another origin did not make: the board's own page,
# or the user typing the address.
OWN_FETCH_SITES = frozenset({"same-origin", "none"})


@dataclass(frozen=True)
class HostNames:
    """The names the board answers to in the Host header."""

    names: frozenset[str]
    any_address: bool  # also any IP address literal: the board listens on every address

    @classmethod
    def started_for(cls, host: str) -> "HostNames":
        """The names for a board started with --host `host`: its loopback names, `host` itself,
        and when it listens on every address, this machine's name and any IP address."""
        host = host.lower()
        if host in EVERY_ADDRESS:
            # Not the fully qualified name: finding it may wait on DNS at every start.
            return cls(LOOPBACK_NAMES | {socket.gethostname().lower()}, any_address=True)
        return cls(LOOPBACK_NAMES | {host.strip("[]")}, any_address=False)

    def accept(self, host_header: str) -> bool:
        name = host_name(host_header)
        return name in self.names or (self.any_address and is_ip_address(name))


def host_name(host_header: str) -> str:
    """The name in a Host header, lower case, without its port (and an IPv6 address without its
    brackets)."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0].rstrip(".") if ":" in host else host.rstrip(".")


def is_ip_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def is_cross_site(headers, own_origin: str) -> bool:
    """Whether a request's headers say a page of another origin sent it."""
    fetch_site = headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site.lower() not in OWN_FETCH_SITES:
        return True
    origin = headers.get("Origin")
    return origin is not None and origin.lower() != own_origin.lower()


def is_loopback(address: str) -> bool:
    """Whether a listening socket's address is reachable from this computer only."""
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False
