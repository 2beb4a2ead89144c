"""The lua 421 method: one filter per listener that compares the chain of the SNI with the
chain of the Host. Pure.

The filter goes before the router on the listener (matched by the port Envoy *binds*, the
Service targetPort) and resolves both names the way Envoy picks chains (exact, then the
longest ``*.suffix``, then the chain without names); it answers 421 when they differ. Its
table grows with the listener's hosts, never with pairs. It reads the SNI with
``streamInfo():requestedServerName()``, a method call: the widely copied
``streamInfo().requestedServerName`` is the method itself, never equal to a host, so that
filter answers 421 to every request.

Hosts are data: each passes `safe_host` (the host-name alphabet) before it is written into
the code; anything else is left out, and `check` then does not count its pairs as answered.
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

from ..analysis.chains import LUA_DIGEST_PREFIX, chain_table, table_digest
from ..model import Placement

LUA_TYPE = "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua"
SOURCE_CODE_SINCE = (1, 16)  # Envoy 1.24 (Istio 1.16) has Lua default_source_code


def lua_code(live: Sequence[Placement]) -> Tuple[str, List[str]]:
    """The Lua source for one listener, and the hosts left out."""
    exact, wild, catch_all, dropped = chain_table(live)

    def table(d: Dict[str, int]) -> str:
        return "{" + ", ".join(f'["{k}"] = {v}' for k, v in sorted(d.items())) + "}"

    code = f"""-- kubectl-gwdup: 421 for requests whose host belongs to another filter chain than the SNI's
-- {LUA_DIGEST_PREFIX}{table_digest(live)}
local exact = {table(exact)}
local wild = {table(wild)}
local catch_all = {catch_all if catch_all else "nil"}

local function chain_of(name)
  local id = exact[name]
  if id then return id end
  local rest = name
  while true do
    rest = rest:match("^[^.]*%.(.+)$")
    if not rest then return catch_all end
    id = wild[rest]
    if id then return id end
  end
end

local function bare(host)
  host = string.lower(host)
  if host:sub(1, 1) == "[" then return host:match("^(%[[^%]]*%])") or host end
  host = host:gsub(":%d*$", "")
  return (host:gsub("%.$", ""))
end

function envoy_on_request(handle)
  local sni = handle:streamInfo():requestedServerName()
  if sni == nil or sni == "" then return end
  local authority = handle:headers():get(":authority")
  if authority == nil then return end
  local want = chain_of(bare(authority))
  if want ~= nil and want ~= chain_of(bare(sni)) then
    handle:respond({{[":status"] = "421"}}, "Misdirected Request\\n")
  end
end
"""
    return code, dropped


def typed_config(code: str, istio_version) -> Dict[str, object]:
    source = ({"defaultSourceCode": {"inlineString": code}}
              if istio_version is None or istio_version >= SOURCE_CODE_SINCE else {"inlineCode": code})
    return {"@type": LUA_TYPE, **source}
