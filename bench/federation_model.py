"""A model of the federation at Japan's scale, fed with bench/federation.py's figures: `python -m bench.federation_model
[--measured FILE.json] [--markdown]`.

1,741 municipalities under 47 prefecture hubs and one national hub, laid out as in bench/federation.py (each node
dials its prefecture's hub; each prefecture hub dials the national hub with one leafnode remote per member
account; nodes of one prefecture meet at its hub, nodes of different prefectures at the national hub). What it
computes, for the layout of today (every node sources every member's streams that source all members: projects
and the sns directory) and for a sharded layout (each prefecture hub keeps one aggregate stream per service of
its members' events, and nodes source the 47 aggregates instead of 1,740 nodes):

- sources (JetStream consumers) in the federation, at one node, and crossing the national hub;
- the national hub's messages/s and CPU cores: idle (each source consumer's idle heartbeat and flow control, as
  measured per cross-prefecture source) and under the country's event volume (each event delivered once per
  sourcing peer);
- connections and subscriptions at the national hub;
- propagation p99: the measured p99 over three hubs, stretched by the national hub's queueing (M/M/1 at its
  utilisation; past one core per process the hub saturates and propagation has no bound);
- catch-up after a prefecture hub outage of one hour: the backlog of its nodes (the country's events of that hour,
  once per node behind it and per sourced stream) over the delivery rate measured behind a restarted hub.

Every input is measured by bench/federation.py (--measured: its --json output) except the stated assumptions
(ASSUMED): the country's event volume and the municipalities per prefecture. Linear extrapolation from twenty
nodes on one 2-core machine: read the figures as orders of magnitude, not as a capacity plan.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

# bench/federation.py's figures of record (bench/README.md, "bench.federation"): replaced by --measured.
MEASURED: dict[str, Any] = {}

ASSUMED = {
    "municipalities": 1741,
    "prefectures": 47,
    "largest_prefecture": 179,  # Hokkaido's municipalities
    "mesh_streams": 2,  # streams every node sources from every member: projects, the sns directory
    "busy_town_events_per_hour": 10_000,  # the cut's volume in bench/federation.py (bench/README.md says why)
    "median_town_events_per_hour": 300,  # a town of 30,000: a few dozen profile changes, themes, notices a day
    "busy_towns": 20,  # designated cities: the busy ones
    "hub_cores": 16,  # the national hub's server: 16 cores (nats-server uses them all)
    "federated_streams": 5,  # identity, projects, sigfed, publicnotices, snsfed: each pair's exports and imports
}


def figures(measured: dict[str, Any]) -> dict[str, float]:
    """The inputs the model needs, from bench/federation.py's JSON."""
    prop = measured["propagation"]["rows"]
    load = measured["hub_load"]
    idle = load["idle (sources' heartbeats)"]["national"]
    busy = load["while publishing (cut)"]["national"]
    towns = measured["meta"]["towns"]
    from bench.federation import pick

    same = sum(len(ns) * (len(ns) - 1) for ns in pick(towns).values())
    cross_pairs = towns * (towns - 1) - same
    streams = 2  # bench/federation.py: identity and projects, every pair of nodes
    cut = measured["cut"]
    behind = len(cut["behind"])
    catch_up = max(cut["last_stored_seconds"].values())
    return {
        "towns": towns,
        "cross_sources": cross_pairs * streams,
        "idle_msgs_per_s": idle["msgs_per_s"],
        "idle_msgs_per_source": idle["msgs_per_s"] / max(1, cross_pairs * streams),
        "cpu_us_per_msg": busy["cpu_us_per_msg"],
        "national_subscriptions": idle.get("subscriptions") or 0,
        "p99_ms_three_hubs": max(r["three_hubs_p99"] for r in prop.values()),
        "p99_ms_one_hub": max(r["one_hub_p99"] for r in prop.values()),
        "p50_ms_three_hubs": max(r["three_hubs_p50"] for r in prop.values()),
        "p50_ms_one_hub": max(r["one_hub_p50"] for r in prop.values()),
        "catch_up_deliveries_per_s": cut["events"] * behind / max(catch_up, 1e-3),
        "catch_up_seconds": catch_up,
        "catch_up_events": cut["events"],
        "node_mb": measured["memory"]["node_mean_mb"],
        "hub_mb": max(measured["memory"]["hub_mb"].values()),
    }


def model(m: dict[str, float], a: dict[str, Any], *, sharded: bool) -> dict[str, float]:
    """The federation at the assumed scale. Every event is taken to reach every node (an upper bound: identity's
    and the notices' streams are sourced only by the nodes that know the person or follow the town)."""
    n, p = a["municipalities"], a["prefectures"]
    per = n / p
    s = a["mesh_streams"]
    if sharded:
        # each prefecture hub runs JetStream: one stream per service sourcing its members (n*s sources, local),
        # one sourcing each other prefecture hub's (p*(p-1)*s, across the national hub); a node sources its own
        # prefecture hub's copy (n*s, local)
        sources = n * s + p * (p - 1) * s + n * s
        at_node = s
        cross = p * (p - 1) * s
        crossings_per_event = p - 1  # once to each other prefecture hub
    else:
        sources = n * (n - 1) * s
        at_node = (n - 1) * s
        cross = (n * (n - 1) - p * per * (per - 1)) * s
        crossings_per_event = n - per  # once per peer of another prefecture
    events_per_h = (a["busy_towns"] * a["busy_town_events_per_hour"]
                    + (n - a["busy_towns"]) * a["median_town_events_per_hour"])
    events_per_s = events_per_h / 3600
    idle = cross * m["idle_msgs_per_source"]
    busy = events_per_s * crossings_per_event * 2  # in and out at the national hub, as nats-server counts them
    msgs = idle + busy
    cores = msgs * m["cpu_us_per_msg"] / 1e6
    rho = cores / a["hub_cores"]
    hop_ms = max(0.0, (m["p99_ms_three_hubs"] - m["p99_ms_one_hub"]) / 2)  # one more hub, measured
    # the national hub's queueing stretches its own hop (M/M/1: 1/(1-rho)); sharded adds a store-and-forward
    # at each prefecture hub's JetStream, taken as one more hop each way
    base = m["p99_ms_three_hubs"] + (2 * hop_ms if sharded else 0.0)
    p99 = math.inf if rho >= 1 else base + hop_ms * (1 / (1 - rho) - 1)
    # a prefecture hub down an hour: each node behind it misses the hour's events of the other prefectures,
    # delivered through the restarted hub at the rate measured behind it (once more into the hub's copy, sharded)
    backlog = events_per_h * (n - per) / n
    rate = m["catch_up_deliveries_per_s"]
    extra = 1 if sharded else 0
    return {
        "sources": sources, "sources_at_a_node": at_node, "sources_crossing_national": cross,
        "events_per_s_country": events_per_s, "national_msgs_per_s_idle": idle, "national_msgs_per_s": msgs,
        "national_cores": cores, "utilisation": rho, "propagation_p99_ms": p99,
        "national_leafnode_connections": n if not sharded else p,
        "national_subscriptions": m["national_subscriptions"] / max(1, m["cross_sources"]) * cross,
        "backlog_per_node": backlog,
        # per pair of accounts at the national hub: one consumer creation, one delivery stream and one flow control
        # per federated stream each way (towntip/node/hub.py); sharded: the prefecture hubs' own accounts
        "national_config_entries": (cross / s if not sharded else p * (p - 1)) * (1 + 2 * a["federated_streams"]) * 2,
        "catch_up_s_avg_prefecture": backlog * (per + extra) / rate,
        "catch_up_s_largest_prefecture": backlog * (a["largest_prefecture"] + extra) / rate,
        "node_mb": m["node_mb"],
    }


def fmt(x: float) -> str:
    if x == math.inf:
        return "unbounded"
    if x >= 100:
        return f"{x:,.0f}"
    return f"{x:.2f}" if x < 10 else f"{x:.1f}"


ROWS = [
    ("sources (JetStream consumers) in the federation", "sources"),
    ("sources at one node", "sources_at_a_node"),
    ("sources crossing the national hub", "sources_crossing_national"),
    ("events/s, the whole country (ASSUMED volume)", "events_per_s_country"),
    ("national hub msgs/s idle (heartbeats, flow control)", "national_msgs_per_s_idle"),
    ("national hub msgs/s with the events", "national_msgs_per_s"),
    ("national hub CPU cores", "national_cores"),
    ("national hub utilisation (of 16 cores, ASSUMED)", "utilisation"),
    ("national hub config: export/import entries", "national_config_entries"),
    ("national hub leafnode connections", "national_leafnode_connections"),
    ("national hub subscriptions", "national_subscriptions"),
    ("propagation p99, ms (three hubs)", "propagation_p99_ms"),
    ("backlog per node after a prefecture hub's hour out (deliveries)", "backlog_per_node"),
    ("catch-up, s: a prefecture of 37 nodes", "catch_up_s_avg_prefecture"),
    ("catch-up, s: Hokkaido's 179 nodes behind one hub", "catch_up_s_largest_prefecture"),
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.federation_model", description=__doc__.splitlines()[0])
    ap.add_argument("--measured", default=str(Path(__file__).with_name("federation_figures.json")),
                    help="bench/federation.py's --json output (default: the figures of record)")
    args = ap.parse_args(argv)
    measured = json.loads(Path(args.measured).read_text())
    m = figures(measured)
    print(f"measured ({measured['meta']['date']}, {measured['meta']['commit']}, {measured['meta']['machine']}):")
    for k, v in m.items():
        print(f"  {k}: {fmt(v)}")
    today, sharded = model(m, ASSUMED, sharded=False), model(m, ASSUMED, sharded=True)
    print("\n| 1,741 municipalities, 47 prefecture hubs | every node sources every member | "
          "prefecture hubs keep the copies (sharded) |\n| --- | --- | --- |")
    for label, key in ROWS:
        print(f"| {label} | {fmt(today[key])} | {fmt(sharded[key])} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
