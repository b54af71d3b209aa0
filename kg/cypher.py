"""Every Cypher query kgrec runs, each a named constant.

Query text is assembled here, at import time, from the names in :mod:`kg.schema` only. Ids,
titles, domains and every other value travel as parameters (``$rows``, ``$domain``, …), never in
query text, so no input can change a query's meaning. Writes are batched and idempotent:
nodes as ``UNWIND $rows AS row MERGE …``; relationships as columns packed into strings that the
query splits and unwinds before it merges (see ``_rels_head`` for the layout and why). A batch
sent twice leaves the graph as it was after the first. The ``CREATE_*`` variants serve first
builds only, when there is nothing to merge with.

The mapping tables at the end (``MERGE_NODES[label]`` …) let stores pick the query for a label
or relationship type; each entry is one of the constants above them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from kg.schema import (
    BUILD,
    COMPLETE,
    CONFIDENCE,
    DOMAIN,
    ID,
    META_LABEL,
    NODE_INDEXES,
    PUBLISHED_RELS,
    RELS,
    RUN_ID,
    SCHEMA_VERSION_KEY,
    FIRST_USER,
    SECOND_USER,
    TS,
    UPDATED_AT,
    USERS,
    Label,
    PROP_DTYPES,
    PathKind,
    RelType,
)


class Query(NamedTuple):
    """A Cypher query and the name of the constant that holds it (used in error messages)."""

    name: str
    text: str


# --------------------------------------------------------------------------- builders


def _constraint(label: str) -> str:
    return (f"CREATE CONSTRAINT {label.lower()}_domain_id IF NOT EXISTS "
            f"FOR (n:{label}) REQUIRE (n.{DOMAIN}, n.{ID}) IS UNIQUE")


def _merge_nodes(name: str, label: Label) -> Query:
    # `SET n = row.props` replaces the whole property map, so a property that vanished from the
    # dataset vanishes from the node; the store's own keys are set again right after.
    return Query(name, f"""
UNWIND $rows AS row
MERGE (n:{label} {{{DOMAIN}: $domain, {ID}: row.id}})
SET n = row.props
SET n.{DOMAIN} = $domain, n.{ID} = row.id, n.{BUILD} = $build
""")


def _create_nodes(name: str, label: Label) -> Query:
    # Used only while the label has no node of the domain: nothing to merge with, and the
    # (domain, id) constraint still refuses a duplicate.
    return Query(name, f"""
UNWIND $rows AS row
CREATE (n:{label})
SET n = row.props
SET n.{DOMAIN} = $domain, n.{ID} = row.id, n.{BUILD} = $build
""")


def _seek(var: str, label: Label) -> str:
    # The planner caches a plan made when the labels were empty (the first batch of a build);
    # without the hint that plan scans the whole index once per row.
    return f"USING INDEX SEEK {var}:{label}({DOMAIN}, {ID})"


def _stamp(rel: RelType) -> tuple[str, str]:
    # RECOMMENDED and SUGGESTED rows belong to a publishing run, not to a build.
    return (RUN_ID, "$run_id") if rel in PUBLISHED_RELS else (BUILD, "$build")


def value_props(rel: RelType) -> list[str]:
    """The properties a relationship write sends per row (its stamp travels once)."""
    stamp, _ = _stamp(rel)
    return [p for p in RELS[rel].props if p != stamp]


def _rels_head(rel: RelType, by_node_id: bool = False) -> str:
    # A batch arrives as a few long strings rather than one map per relationship: the Python
    # driver packs every value separately (about 20 µs each), which capped ingest near
    # 10,000 relationships/s; one string per column packs in microseconds. Each column is its
    # values joined by $sep (a separator the store checked occurs in no id): ids as they are,
    # numbers as decimal text ("" for missing, which toFloat/toInteger read as null), and text
    # properties as indices into a ${prop}_values list.
    # Index seeks are most of the server's work, so each node is looked up once per batch:
    # rows come grouped by start node ($src lists each once, $offsets where its rows begin),
    # and $targets lists the distinct end nodes, which $dst points into by position.
    # With by_node_id, $src and $targets hold the nodes' internal ids (id(n)), read just before
    # the write: a lookup by id reads one record where an index seek walks a B-tree and takes a
    # lock; the label and domain are still checked, so an id never resolves to another
    # domain's node.
    spec = RELS[rel]
    ids = "toIntegerList(split({}, $sep))" if by_node_id else "split({}, $sep)"
    cols = [f"{ids.format('$src')} AS src", "toIntegerList(split($offsets, $sep)) AS offsets",
            f"{ids.format('$targets')} AS targets", "toIntegerList(split($dst, $sep)) AS dst"]
    for p in value_props(rel):
        if PROP_DTYPES[p] == "Int64":
            cols.append(f"toIntegerList(split(${p}, $sep)) AS {p}")
        elif PROP_DTYPES[p] == "float64":
            cols.append(f"toFloatList(split(${p}, $sep)) AS {p}")
        else:
            cols.append(f"[c IN toIntegerList(split(${p}, $sep)) | ${p}_values[c]] AS {p}")
    with_cols = ",\n     ".join(cols)
    if by_node_id:
        # The labels ($src_label, $dst_label) are checked with labels(), not written in the
        # pattern: with a pattern label, a plan cached while the label was nearly empty (right
        # after a drop) seeks the (domain) index and filters on id, which reads every node of
        # the domain per lookup and halved ingest at random. Without a label no index
        # applies, so the seek by id is the only plan.
        find_b = ("OPTIONAL MATCH (b) WHERE id(b) = target AND $dst_label IN labels(b) "
                  f"AND b.{DOMAIN} = $domain")
        find_a = f"MATCH (a) WHERE id(a) = src[g] AND $src_label IN labels(a) AND a.{DOMAIN} = $domain"
    else:
        find_b = (f"OPTIONAL MATCH (b:{spec.dst} {{{DOMAIN}: $domain, {ID}: target}}) "
                  f"{_seek('b', spec.dst)}")
        find_a = f"MATCH (a:{spec.src} {{{DOMAIN}: $domain, {ID}: src[g]}}) {_seek('a', spec.src)}"
    # collect([b]) keeps a missing end node as [null], so positions stay aligned.
    return f"""
WITH {with_cols}
CALL (targets) {{
  UNWIND targets AS target
  {find_b}
  RETURN collect([b]) AS ends
}}
UNWIND range(0, size(src) - 1) AS g
{find_a}
UNWIND range(offsets[g], offsets[g + 1] - 1) AS j
WITH *, ends[dst[j]][0] AS b
WHERE b IS NOT NULL"""


def _merge_rels(name: str, rel: RelType) -> Query:
    spec = RELS[rel]
    key = ", ".join(f"{k}: {k}[j]" for k in spec.key)
    key = f" {{{key}}}" if key else ""
    stamp, value = _stamp(rel)
    sets = [f"r.{p} = {p}[j]" for p in value_props(rel) if p not in spec.key]
    sets.append(f"r.{stamp} = {value}")
    return Query(name, f"""{_rels_head(rel)}
MERGE (a)-[r:{rel}{key}]->(b)
SET {", ".join(sets)}
RETURN count(r) AS written
""")


def _create_rels(name: str, rel: RelType) -> Query:
    # Used only while the domain has no relationship of this type (a first build), so there
    # is nothing to merge with; rows carry no duplicate keys (the store checks). A commit
    # whose outcome is unknown raises IncompleteCommit, which the driver does not retry, so a
    # batch is never created twice; the rerun finds relationships and merges instead.
    # Endpoints come as internal node ids (see _rels_head), which NODE_IDS reads.
    stamp, value = _stamp(rel)
    props = [f"{p}: {p}[j]" for p in value_props(rel)] + [f"{stamp}: {value}"]
    return Query(name, f"""{_rels_head(rel, by_node_id=True)}
CREATE (a)-[r:{rel} {{{", ".join(props)}}}]->(b)
RETURN count(r) AS written
""")


def _rel_rows(name: str, rel: RelType) -> Query:
    spec = RELS[rel]
    cols = "".join(f", r.{p} AS {p}" for p in spec.props)
    return Query(name, f"""
MATCH (a:{spec.src} {{{DOMAIN}: $domain}})-[r:{rel}]->(b:{spec.dst})
RETURN a.{ID} AS src, b.{ID} AS dst{cols}
""")


def _delete_stale_rels(name: str, rel: RelType) -> Query:
    spec = RELS[rel]
    return Query(name, f"""
MATCH (a:{spec.src} {{{DOMAIN}: $domain}})-[r:{rel}]->()
WHERE r.{BUILD} IS NULL OR r.{BUILD} <> $build
WITH r LIMIT $limit
DELETE r
RETURN count(*) AS deleted
""")


def _delete_stale_nodes(name: str, label: Label) -> Query:
    return Query(name, f"""
MATCH (n:{label} {{{DOMAIN}: $domain}})
WHERE n.{BUILD} IS NULL OR n.{BUILD} <> $build
WITH n LIMIT $limit
DETACH DELETE n
RETURN count(*) AS deleted
""")


def _delete_domain_rels(name: str, rel: RelType) -> Query:
    spec = RELS[rel]
    return Query(name, f"""
MATCH (a:{spec.src} {{{DOMAIN}: $domain}})-[r:{rel}]->()
WITH r LIMIT $limit
DELETE r
RETURN count(*) AS deleted
""")


def _delete_domain_nodes(name: str, label: Label) -> Query:
    return Query(name, f"""
MATCH (n:{label} {{{DOMAIN}: $domain}})
WITH n LIMIT $limit
DETACH DELETE n
RETURN count(*) AS deleted
""")


def _count_nodes(name: str, label: Label) -> Query:
    return Query(name, f"MATCH (n:{label} {{{DOMAIN}: $domain}}) RETURN count(n) AS n")


def _count_rels(name: str, rel: RelType) -> Query:
    # COUNT {} on a bound node with no label on the far end is planned as a degree lookup, so
    # no relationship is read; each type only ever joins spec.src to spec.dst.
    spec = RELS[rel]
    return Query(name, f"""
MATCH (a:{spec.src} {{{DOMAIN}: $domain}})
RETURN sum(COUNT {{ (a)-[:{rel}]->() }}) AS n
""")


def _node_rows(name: str, label: Label) -> Query:
    return Query(name, f"""
MATCH (n:{label} {{{DOMAIN}: $domain}})
RETURN n.{ID} AS id, properties(n) AS props
""")


def _node_ids(name: str, label: Label) -> Query:
    # Internal ids are only valid while the node exists: read right before a write uses them.
    # Two lists in one record unpack about 5x faster in the Python driver than a record per node.
    return Query(name, f"""
MATCH (n:{label} {{{DOMAIN}: $domain}})
RETURN collect(n.{ID}) AS ids, collect(id(n)) AS nodes
""")


def _node_props(name: str, label: Label) -> Query:
    return Query(name, f"""
UNWIND $ids AS node_id
MATCH (n:{label} {{{DOMAIN}: $domain, {ID}: node_id}}) {_seek("n", label)}
RETURN n.{ID} AS id, properties(n) AS props
""")


# --------------------------------------------------------------------------- schema

CREATE_USER_CONSTRAINT = Query("CREATE_USER_CONSTRAINT", _constraint(Label.USER))
CREATE_ITEM_CONSTRAINT = Query("CREATE_ITEM_CONSTRAINT", _constraint(Label.ITEM))
CREATE_CATEGORY_CONSTRAINT = Query("CREATE_CATEGORY_CONSTRAINT", _constraint(Label.CATEGORY))
CREATE_ENTITY_CONSTRAINT = Query("CREATE_ENTITY_CONSTRAINT", _constraint(Label.ENTITY))
CREATE_META_CONSTRAINT = Query(
    "CREATE_META_CONSTRAINT",
    f"CREATE CONSTRAINT kgrec_meta_domain IF NOT EXISTS "
    f"FOR (m:{META_LABEL}) REQUIRE m.{DOMAIN} IS UNIQUE",
)
CREATE_DOMAIN_INDEXES = tuple(
    Query("CREATE_DOMAIN_INDEXES",
          f"CREATE INDEX {str(label).lower()}_{key} IF NOT EXISTS FOR (n:{label}) ON (n.{key})")
    for label, key in NODE_INDEXES
)
AWAIT_INDEXES = Query("AWAIT_INDEXES", "CALL db.awaitIndexes($timeout_s)")
SHOW_CONSTRAINTS = Query(
    "SHOW_CONSTRAINTS",
    "SHOW CONSTRAINTS YIELD name, labelsOrTypes, properties, type RETURN *",
)

# --------------------------------------------------------------------------- meta

READ_META = Query("READ_META", f"""
MATCH (m:{META_LABEL} {{{DOMAIN}: $domain}})
RETURN properties(m) AS props
""")
WRITE_META = Query("WRITE_META", f"""
MERGE (m:{META_LABEL} {{{DOMAIN}: $domain}})
SET m.{SCHEMA_VERSION_KEY} = $schema_version, m.{BUILD} = $build,
    m.{COMPLETE} = $complete, m.{UPDATED_AT} = $updated_at
""")
DELETE_META = Query("DELETE_META", f"MATCH (m:{META_LABEL} {{{DOMAIN}: $domain}}) DELETE m")

# --------------------------------------------------------------------------- node writes

MERGE_USER_NODES = _merge_nodes("MERGE_USER_NODES", Label.USER)
MERGE_ITEM_NODES = _merge_nodes("MERGE_ITEM_NODES", Label.ITEM)
MERGE_CATEGORY_NODES = _merge_nodes("MERGE_CATEGORY_NODES", Label.CATEGORY)
MERGE_ENTITY_NODES = _merge_nodes("MERGE_ENTITY_NODES", Label.ENTITY)
CREATE_USER_NODES = _create_nodes("CREATE_USER_NODES", Label.USER)
CREATE_ITEM_NODES = _create_nodes("CREATE_ITEM_NODES", Label.ITEM)
CREATE_CATEGORY_NODES = _create_nodes("CREATE_CATEGORY_NODES", Label.CATEGORY)
CREATE_ENTITY_NODES = _create_nodes("CREATE_ENTITY_NODES", Label.ENTITY)

# --------------------------------------------------------------------------- relationship writes

MERGE_INTERACTED_RELS = _merge_rels("MERGE_INTERACTED_RELS", RelType.INTERACTED)
MERGE_IN_CATEGORY_RELS = _merge_rels("MERGE_IN_CATEGORY_RELS", RelType.IN_CATEGORY)
MERGE_MENTIONS_RELS = _merge_rels("MERGE_MENTIONS_RELS", RelType.MENTIONS)
MERGE_FOLLOWS_RELS = _merge_rels("MERGE_FOLLOWS_RELS", RelType.FOLLOWS)
MERGE_RECOMMENDED_RELS = _merge_rels("MERGE_RECOMMENDED_RELS", RelType.RECOMMENDED)
CREATE_INTERACTED_RELS = _create_rels("CREATE_INTERACTED_RELS", RelType.INTERACTED)
CREATE_IN_CATEGORY_RELS = _create_rels("CREATE_IN_CATEGORY_RELS", RelType.IN_CATEGORY)
CREATE_MENTIONS_RELS = _create_rels("CREATE_MENTIONS_RELS", RelType.MENTIONS)
CREATE_FOLLOWS_RELS = _create_rels("CREATE_FOLLOWS_RELS", RelType.FOLLOWS)
MERGE_CO_INTERACTED_RELS = _merge_rels("MERGE_CO_INTERACTED_RELS", RelType.CO_INTERACTED)
CREATE_CO_INTERACTED_RELS = _create_rels("CREATE_CO_INTERACTED_RELS", RelType.CO_INTERACTED)


def _delete_old_run_rels(name: str, rel: RelType) -> Query:
    return Query(name, f"""
MATCH (a:{Label.USER} {{{DOMAIN}: $domain}})-[r:{rel}]->()
WHERE r.{RUN_ID} IS NULL OR r.{RUN_ID} <> $run_id
WITH r LIMIT $limit
DELETE r
RETURN count(*) AS deleted
""")


MERGE_SUGGESTED_RELS = _merge_rels("MERGE_SUGGESTED_RELS", RelType.SUGGESTED)
DELETE_OLD_RECOMMENDED = _delete_old_run_rels("DELETE_OLD_RECOMMENDED", RelType.RECOMMENDED)
DELETE_OLD_SUGGESTED = _delete_old_run_rels("DELETE_OLD_SUGGESTED", RelType.SUGGESTED)

# --------------------------------------------------------------------------- refresh / drop

DELETE_STALE_INTERACTED = _delete_stale_rels("DELETE_STALE_INTERACTED", RelType.INTERACTED)
DELETE_STALE_IN_CATEGORY = _delete_stale_rels("DELETE_STALE_IN_CATEGORY", RelType.IN_CATEGORY)
DELETE_STALE_MENTIONS = _delete_stale_rels("DELETE_STALE_MENTIONS", RelType.MENTIONS)
DELETE_STALE_FOLLOWS = _delete_stale_rels("DELETE_STALE_FOLLOWS", RelType.FOLLOWS)
DELETE_STALE_CO_INTERACTED = _delete_stale_rels("DELETE_STALE_CO_INTERACTED", RelType.CO_INTERACTED)
DELETE_STALE_USERS = _delete_stale_nodes("DELETE_STALE_USERS", Label.USER)
DELETE_STALE_ITEMS = _delete_stale_nodes("DELETE_STALE_ITEMS", Label.ITEM)
DELETE_STALE_CATEGORIES = _delete_stale_nodes("DELETE_STALE_CATEGORIES", Label.CATEGORY)
DELETE_STALE_ENTITIES = _delete_stale_nodes("DELETE_STALE_ENTITIES", Label.ENTITY)

DELETE_DOMAIN_INTERACTED = _delete_domain_rels("DELETE_DOMAIN_INTERACTED", RelType.INTERACTED)
DELETE_DOMAIN_IN_CATEGORY = _delete_domain_rels("DELETE_DOMAIN_IN_CATEGORY", RelType.IN_CATEGORY)
DELETE_DOMAIN_MENTIONS = _delete_domain_rels("DELETE_DOMAIN_MENTIONS", RelType.MENTIONS)
DELETE_DOMAIN_FOLLOWS = _delete_domain_rels("DELETE_DOMAIN_FOLLOWS", RelType.FOLLOWS)
DELETE_DOMAIN_RECOMMENDED = _delete_domain_rels("DELETE_DOMAIN_RECOMMENDED", RelType.RECOMMENDED)
DELETE_DOMAIN_CO_INTERACTED = _delete_domain_rels("DELETE_DOMAIN_CO_INTERACTED",
                                                  RelType.CO_INTERACTED)
DELETE_DOMAIN_SUGGESTED = _delete_domain_rels("DELETE_DOMAIN_SUGGESTED", RelType.SUGGESTED)
DELETE_DOMAIN_USERS = _delete_domain_nodes("DELETE_DOMAIN_USERS", Label.USER)
DELETE_DOMAIN_ITEMS = _delete_domain_nodes("DELETE_DOMAIN_ITEMS", Label.ITEM)
DELETE_DOMAIN_CATEGORIES = _delete_domain_nodes("DELETE_DOMAIN_CATEGORIES", Label.CATEGORY)
DELETE_DOMAIN_ENTITIES = _delete_domain_nodes("DELETE_DOMAIN_ENTITIES", Label.ENTITY)

# --------------------------------------------------------------------------- counts and reads

COUNT_USERS = _count_nodes("COUNT_USERS", Label.USER)
COUNT_ITEMS = _count_nodes("COUNT_ITEMS", Label.ITEM)
COUNT_CATEGORIES = _count_nodes("COUNT_CATEGORIES", Label.CATEGORY)
COUNT_ENTITIES = _count_nodes("COUNT_ENTITIES", Label.ENTITY)
COUNT_INTERACTED = _count_rels("COUNT_INTERACTED", RelType.INTERACTED)
COUNT_IN_CATEGORY = _count_rels("COUNT_IN_CATEGORY", RelType.IN_CATEGORY)
COUNT_MENTIONS = _count_rels("COUNT_MENTIONS", RelType.MENTIONS)
COUNT_FOLLOWS = _count_rels("COUNT_FOLLOWS", RelType.FOLLOWS)
COUNT_RECOMMENDED = _count_rels("COUNT_RECOMMENDED", RelType.RECOMMENDED)
COUNT_CO_INTERACTED = _count_rels("COUNT_CO_INTERACTED", RelType.CO_INTERACTED)
COUNT_SUGGESTED = _count_rels("COUNT_SUGGESTED", RelType.SUGGESTED)

USER_ROWS = _node_rows("USER_ROWS", Label.USER)
ITEM_ROWS = _node_rows("ITEM_ROWS", Label.ITEM)
CATEGORY_ROWS = _node_rows("CATEGORY_ROWS", Label.CATEGORY)
ENTITY_ROWS = _node_rows("ENTITY_ROWS", Label.ENTITY)
USER_IDS = _node_ids("USER_IDS", Label.USER)
ITEM_IDS = _node_ids("ITEM_IDS", Label.ITEM)
CATEGORY_IDS = _node_ids("CATEGORY_IDS", Label.CATEGORY)
ENTITY_IDS = _node_ids("ENTITY_IDS", Label.ENTITY)
USER_PROPS = _node_props("USER_PROPS", Label.USER)
ITEM_PROPS = _node_props("ITEM_PROPS", Label.ITEM)
CATEGORY_PROPS = _node_props("CATEGORY_PROPS", Label.CATEGORY)
ENTITY_PROPS = _node_props("ENTITY_PROPS", Label.ENTITY)

INTERACTED_ROWS = _rel_rows("INTERACTED_ROWS", RelType.INTERACTED)
IN_CATEGORY_ROWS = _rel_rows("IN_CATEGORY_ROWS", RelType.IN_CATEGORY)
MENTIONS_ROWS = _rel_rows("MENTIONS_ROWS", RelType.MENTIONS)
FOLLOWS_ROWS = _rel_rows("FOLLOWS_ROWS", RelType.FOLLOWS)
RECOMMENDED_ROWS = _rel_rows("RECOMMENDED_ROWS", RelType.RECOMMENDED)
CO_INTERACTED_ROWS = _rel_rows("CO_INTERACTED_ROWS", RelType.CO_INTERACTED)
SUGGESTED_ROWS = _rel_rows("SUGGESTED_ROWS", RelType.SUGGESTED)

# --------------------------------------------------------------------------- explanation paths
# Batched: the path groups of kg.store.PATH_GROUP_COLUMNS from one user to a list of items,
# each item's groups cut to its $limit best in kg.store.path_group_key order: ORDER BY compares
# strings in UTF-16 code units, as kg.store.id_order does, so the ties broken here are those
# kg.store.cut_path_groups breaks, and an item has at most $limit groups of a kind (many
# genre mentions tie at confidence 0.75; keeping ties returned up to 184 rows for one item).
# Each kind's body starts from `u` and an item `i` and ends with one row per item:
# `groups`, a list of group lists (PATH_GROUP_COLUMNS without item_id), best first. The items
# are one multi-valued index seek, so the user's side of each pattern is expanded once for all.

_USER_AND_ITEMS = f"""
MATCH (u:{Label.USER} {{{DOMAIN}: $domain, {ID}: $user_id}}) {_seek("u", Label.USER)}
MATCH (i:{Label.ITEM} {{{DOMAIN}: $domain}}) {_seek("i", Label.ITEM)} WHERE i.{ID} IN $item_ids
"""

# With a history cap, paths go only through the items of the user's $history most recent
# interactions (kg.store.history_cut): `cut` is the ts of the $history-th most recent
# INTERACTED relationship (a missing ts last), null when there are no more than $history or that
# one has no ts (then everything is kept), and a relationship `r` passes _RECENT when its ts is
# at or after the cut: an item is kept when some relationship to it passes. The cut reads one
# number per relationship, so a heavy user's history is sorted once instead of being expanded
# into every mention and category of every item (16,000 rows for a user with 2,700 items).
_CUT = f"""
CALL (u) {{
  MATCH (u)-[r:{RelType.INTERACTED}]->(:{Label.ITEM})
  WITH r.{TS} AS ts
  ORDER BY ts IS NULL, ts DESC
  SKIP $history - 1 LIMIT 1
  RETURN collect(ts)[0] AS cut
}}
"""
_RECENT = f"(cut IS NULL OR r.{TS} >= cut)"

_COLLECT_GROUPS = """
WITH i, collect(g)[..$limit] AS groups
"""


# Candidates come from the item's CO_INTERACTED partners (a few per item, counted at build
# time) that the user interacted with, instead of every user of every item the user liked
# (16,000 rows for a typical ml-latest-small user). `users` counts every user of both items;
# the user is one of them for every partner (they interacted with it) and for the item itself
# only when they interacted with it too, so subtracting `own` leaves the other users, and the
# first of the two stored smallest ids that is not the user's is the smallest other user.
def _co_interaction_body(recent: str) -> str:
    return f"""
WITH u, i, CASE WHEN EXISTS {{ (u)-[:{RelType.INTERACTED}]->(i) }} THEN 1 ELSE 0 END AS own
MATCH (i)-[c:{RelType.CO_INTERACTED}]->(x:{Label.ITEM})
WHERE EXISTS {{ (u)-[r:{RelType.INTERACTED}]->(x){" WHERE " + recent if recent else ""} }}
WITH u, i, x, c, c.{USERS} - own AS n
WHERE n > 0
WITH i, x.{ID} AS via, n, CASE WHEN c.{FIRST_USER} = u.{ID} THEN c.{SECOND_USER} ELSE c.{FIRST_USER} END AS other
ORDER BY n DESC, via
WITH i, [via, n, other] AS g""" + _COLLECT_GROUPS


# Joined on the entity: the user's side (their items' mentions, a few per item) is expanded
# once for all items, where the planner's own choice walked every item mentioning each entity
# of the item (about 10,000 rows for a genre). A missing or NaN confidence ranks last.
def _entity_body(recent: str) -> str:
    return f"""
MATCH (i)-[m2:{RelType.MENTIONS}]->(e:{Label.ENTITY})
MATCH (u)-[r:{RelType.INTERACTED}]->(x:{Label.ITEM})-[m1:{RelType.MENTIONS}]->(e)
USING JOIN ON e
WHERE x <> i{" AND " + recent if recent else ""}
WITH DISTINCT i, x, e, m1.{CONFIDENCE} AS c1, m2.{CONFIDENCE} AS c2
WITH i, x.{ID} AS via, e.{ID} AS ent, c1, c2, c1 * c2 AS p
WITH i, via, ent, c1, c2, p IS NULL OR p <> p AS missing, p
ORDER BY missing, CASE WHEN missing THEN 0.0 ELSE p END DESC, via, ent
WITH i, [via, ent, c1, c2] AS g""" + _COLLECT_GROUPS


def _friend_body(recent: str) -> str:
    # the user's own history plays no part: the cap does not apply
    return f"""
MATCH (u)-[:{RelType.FOLLOWS}]->(f:{Label.USER})-[r:{RelType.INTERACTED}]->(i)
WHERE f <> u
WITH i, f.{ID} AS friend, count(r) AS n, max(r.{TS}) AS ts
ORDER BY n DESC, ts DESC, friend
WITH i, [friend, n, ts] AS g""" + _COLLECT_GROUPS


# Joined on the category too: left to itself the planner walked every item of the item's
# categories (5,400 for a large genre) and tested each for an edge from the user, 130,000 db
# hits for a user with 2,700 items; the user's side is a few rows per item they have.
def _category_body(recent: str) -> str:
    return f"""
MATCH (i)-[:{RelType.IN_CATEGORY}]->(c:{Label.CATEGORY})
MATCH (u)-[r:{RelType.INTERACTED}]->(x:{Label.ITEM})-[:{RelType.IN_CATEGORY}]->(c)
USING JOIN ON c
WHERE x <> i{" AND " + recent if recent else ""}
WITH i, c, x, max(r.{TS}) AS ts
WITH i, c.{ID} AS cat, count(x) AS n, max(ts) AS latest, collect([x.{ID}, ts]) AS liked
ORDER BY n DESC, cat
WITH i, [cat, n, latest, [p IN liked WHERE p[1] = latest | p[0]]] AS g""" + _COLLECT_GROUPS


_PATH_GROUP_BODIES: dict[PathKind, Callable[[str], str]] = {
    PathKind.CO_INTERACTION: _co_interaction_body,
    PathKind.ENTITY: _entity_body,
    PathKind.FRIEND: _friend_body,
    PathKind.CATEGORY: _category_body,
}


def path_groups(kinds: tuple[PathKind, ...], name: str | None = None, history: bool = False) -> Query:
    """One query for the path groups of several kinds, for a user and a list of items.

    It returns one record (none when the user or every item is unknown) with a column per kind,
    in ``kinds`` order: a list of ``[item_id, groups]``, one per item with groups of that kind.
    One record of a few nested lists instead of a record per group: the driver unpacks records
    one message at a time, which cost the API more than the query cost Neo4j.
    With ``history``, the query takes ``$history`` and paths go through the items of the
    user's ``$history`` most recent interactions only (:func:`kg.store.history_cut`)."""
    recent, scope = (_RECENT, "u, items, cut") if history else ("", "u, items")
    calls = "".join(
        f"CALL ({scope}) {{\nUNWIND items AS i{_PATH_GROUP_BODIES[PathKind(k)](recent)}"
        f"RETURN collect([i.{ID}, groups]) AS k{n}\n}}\n"
        for n, k in enumerate(kinds))
    columns = ", ".join(f"k{n}" for n in range(len(kinds)))
    name = name or "PATH_GROUPS(" + ",".join(str(PathKind(k)) for k in kinds) + ")" + (
        "+HISTORY" if history else "")
    head = _USER_AND_ITEMS + "WITH u, collect(i) AS items\n" + (_CUT if history else "")
    return Query(name, head + calls + f"RETURN {columns}\n")


def _kept_side(rel: RelType, end: Label, row: str, name: str, ids: str, on_item: bool = False) -> str:
    """A subquery of :func:`path_tables`: ``row`` for each of the user's ``kept`` items ``x``
    (``ts``: its latest interaction) and each node ``e`` it reaches by ``rel`` that some item
    of the list reaches too (``on_item``: ``x`` is such a node itself), collected as ``name``,
    with the distinct nodes' ids as ``ids``."""
    join = "WHERE x IN ends" if on_item else f"MATCH (x)-[m:{rel}]->(e) WHERE e IN ends"
    return f"""CALL (items, kept) {{
  UNWIND items AS i
  OPTIONAL MATCH (i)-[:{rel}]->(e:{end})
  WITH kept, collect(DISTINCT e) AS ends
  UNWIND kept AS k
  WITH ends, k[0] AS x, k[1] AS ts
  {join}
  RETURN collect({row}) AS {name}, collect(DISTINCT {"x" if on_item else "e"}.{ID}) AS {ids}
}}
"""


def path_tables(history: bool = False) -> Query:
    """One read of what the path groups of a user and a list of items join over, for
    :class:`kg.store.PathTables` (the join itself then runs in Python, once for all the items).

    The per-item bodies of :func:`path_groups` expand the user's side once per item: 20 items
    of a published list walked a heavy user's kept history 20 times. Here the items come first
    and the user's side is joined once, on the items' entities, categories and
    co-interaction partners, so only the user's rows that can be part of a path come back.
    Returns one record: ``items`` (``[item_id, own, mentions, categories, partners, friends]``
    per known item: ``own`` whether the user interacted with it, ``mentions`` its
    ``[entity_id, confidence]``, ``partners`` its ``[item_id, users, first_user,
    second_user]``, ``friends`` the ``[user_id, interactions, latest ts]`` of each user the
    user follows who interacted with it), ``mine_e`` (``[item_id, ts, entity_id,
    confidence]``), ``mine_c`` (``[item_id, ts, category_id]``) and ``mine_x`` (``[item_id,
    ts]`` for partners), over the user's items kept by the history cut (``ts``: their latest
    interaction). An item's mentions, categories and partners come back only where the
    user's side has the same entity, category or partner: the others cannot be on a path.
    With ``history`` it takes ``$history`` (:func:`kg.store.history_cut`)."""
    recent, scope = (_RECENT, "u, cut") if history else ("", "u")
    keep = f"\n  WHERE {recent}" if recent else ""
    text = _USER_AND_ITEMS + "WITH u, collect(i) AS items\n" + (_CUT if history else "") + f"""
CALL ({scope}) {{
  MATCH (u)-[r:{RelType.INTERACTED}]->(x:{Label.ITEM}){keep}
  WITH x, max(r.{TS}) AS ts
  RETURN collect([x, ts]) AS kept
}}
""" + _kept_side(RelType.MENTIONS, Label.ENTITY, f"[x.{ID}, ts, e.{ID}, m.{CONFIDENCE}]", "mine_e", "ent_ids") \
        + _kept_side(RelType.IN_CATEGORY, Label.CATEGORY, f"[x.{ID}, ts, e.{ID}]", "mine_c", "cat_ids") \
        + _kept_side(RelType.CO_INTERACTED, Label.ITEM, f"[x.{ID}, ts]", "mine_x", "kept_ids", on_item=True) \
        + f"""
CALL (u, items, ent_ids, cat_ids, kept_ids) {{
  UNWIND items AS i
  WITH u, i, ent_ids, cat_ids, kept_ids, EXISTS {{ (u)-[:{RelType.INTERACTED}]->(i) }} AS own
  WITH i, own,
       COLLECT {{ MATCH (i)-[m:{RelType.MENTIONS}]->(e:{Label.ENTITY}) WHERE e.{ID} IN ent_ids
                  RETURN [e.{ID}, m.{CONFIDENCE}] }} AS ments,
       COLLECT {{ MATCH (i)-[:{RelType.IN_CATEGORY}]->(c:{Label.CATEGORY}) WHERE c.{ID} IN cat_ids RETURN c.{ID} }} AS cats,
       COLLECT {{ MATCH (i)-[c:{RelType.CO_INTERACTED}]->(x:{Label.ITEM}) WHERE x.{ID} IN kept_ids
                  RETURN [x.{ID}, c.{USERS}, c.{FIRST_USER}, c.{SECOND_USER}] }} AS partners,
       COLLECT {{ MATCH (u)-[:{RelType.FOLLOWS}]->(f:{Label.USER})-[r:{RelType.INTERACTED}]->(i) WHERE f <> u
                  WITH f, count(r) AS n, max(r.{TS}) AS ts RETURN [f.{ID}, n, ts] }} AS friends
  RETURN collect([i.{ID}, own, ments, cats, partners, friends]) AS rows
}}
RETURN rows AS items, mine_e, mine_c, mine_x
"""
    return Query("PATH_TABLES" + ("+HISTORY" if history else ""), text)


# --------------------------------------------------------------------------- lookup tables

SCHEMA_QUERIES: tuple[Query, ...] = (
    CREATE_USER_CONSTRAINT, CREATE_ITEM_CONSTRAINT, CREATE_CATEGORY_CONSTRAINT,
    CREATE_ENTITY_CONSTRAINT, CREATE_META_CONSTRAINT, *CREATE_DOMAIN_INDEXES,
)
MERGE_NODES: dict[Label, Query] = {
    Label.USER: MERGE_USER_NODES, Label.ITEM: MERGE_ITEM_NODES,
    Label.CATEGORY: MERGE_CATEGORY_NODES, Label.ENTITY: MERGE_ENTITY_NODES,
}
CREATE_NODES: dict[Label, Query] = {
    Label.USER: CREATE_USER_NODES, Label.ITEM: CREATE_ITEM_NODES,
    Label.CATEGORY: CREATE_CATEGORY_NODES, Label.ENTITY: CREATE_ENTITY_NODES,
}
CREATE_RELS: dict[RelType, Query] = {
    RelType.INTERACTED: CREATE_INTERACTED_RELS, RelType.IN_CATEGORY: CREATE_IN_CATEGORY_RELS,
    RelType.MENTIONS: CREATE_MENTIONS_RELS, RelType.FOLLOWS: CREATE_FOLLOWS_RELS,
    RelType.CO_INTERACTED: CREATE_CO_INTERACTED_RELS,
}
MERGE_RELS: dict[RelType, Query] = {
    RelType.INTERACTED: MERGE_INTERACTED_RELS, RelType.IN_CATEGORY: MERGE_IN_CATEGORY_RELS,
    RelType.MENTIONS: MERGE_MENTIONS_RELS, RelType.FOLLOWS: MERGE_FOLLOWS_RELS,
    RelType.RECOMMENDED: MERGE_RECOMMENDED_RELS, RelType.CO_INTERACTED: MERGE_CO_INTERACTED_RELS,
    RelType.SUGGESTED: MERGE_SUGGESTED_RELS,
}
DELETE_STALE_RELS: dict[RelType, Query] = {
    RelType.INTERACTED: DELETE_STALE_INTERACTED, RelType.IN_CATEGORY: DELETE_STALE_IN_CATEGORY,
    RelType.MENTIONS: DELETE_STALE_MENTIONS, RelType.FOLLOWS: DELETE_STALE_FOLLOWS,
    RelType.CO_INTERACTED: DELETE_STALE_CO_INTERACTED,
}
DELETE_STALE_NODES: dict[Label, Query] = {
    Label.USER: DELETE_STALE_USERS, Label.ITEM: DELETE_STALE_ITEMS,
    Label.CATEGORY: DELETE_STALE_CATEGORIES, Label.ENTITY: DELETE_STALE_ENTITIES,
}
DELETE_DOMAIN_RELS: dict[RelType, Query] = {
    RelType.INTERACTED: DELETE_DOMAIN_INTERACTED, RelType.IN_CATEGORY: DELETE_DOMAIN_IN_CATEGORY,
    RelType.MENTIONS: DELETE_DOMAIN_MENTIONS, RelType.FOLLOWS: DELETE_DOMAIN_FOLLOWS,
    RelType.RECOMMENDED: DELETE_DOMAIN_RECOMMENDED, RelType.CO_INTERACTED: DELETE_DOMAIN_CO_INTERACTED,
    RelType.SUGGESTED: DELETE_DOMAIN_SUGGESTED,
}
DELETE_DOMAIN_NODES: dict[Label, Query] = {
    Label.USER: DELETE_DOMAIN_USERS, Label.ITEM: DELETE_DOMAIN_ITEMS,
    Label.CATEGORY: DELETE_DOMAIN_CATEGORIES, Label.ENTITY: DELETE_DOMAIN_ENTITIES,
}
COUNT_NODES: dict[Label, Query] = {
    Label.USER: COUNT_USERS, Label.ITEM: COUNT_ITEMS,
    Label.CATEGORY: COUNT_CATEGORIES, Label.ENTITY: COUNT_ENTITIES,
}
COUNT_RELS: dict[RelType, Query] = {
    RelType.INTERACTED: COUNT_INTERACTED, RelType.IN_CATEGORY: COUNT_IN_CATEGORY,
    RelType.MENTIONS: COUNT_MENTIONS, RelType.FOLLOWS: COUNT_FOLLOWS,
    RelType.RECOMMENDED: COUNT_RECOMMENDED, RelType.CO_INTERACTED: COUNT_CO_INTERACTED,
    RelType.SUGGESTED: COUNT_SUGGESTED,
}
NODE_ROWS: dict[Label, Query] = {
    Label.USER: USER_ROWS, Label.ITEM: ITEM_ROWS,
    Label.CATEGORY: CATEGORY_ROWS, Label.ENTITY: ENTITY_ROWS,
}
NODE_IDS: dict[Label, Query] = {
    Label.USER: USER_IDS, Label.ITEM: ITEM_IDS,
    Label.CATEGORY: CATEGORY_IDS, Label.ENTITY: ENTITY_IDS,
}
NODE_PROPS: dict[Label, Query] = {
    Label.USER: USER_PROPS, Label.ITEM: ITEM_PROPS,
    Label.CATEGORY: CATEGORY_PROPS, Label.ENTITY: ENTITY_PROPS,
}
REL_ROWS: dict[RelType, Query] = {
    RelType.INTERACTED: INTERACTED_ROWS, RelType.IN_CATEGORY: IN_CATEGORY_ROWS,
    RelType.MENTIONS: MENTIONS_ROWS, RelType.FOLLOWS: FOLLOWS_ROWS,
    RelType.RECOMMENDED: RECOMMENDED_ROWS, RelType.CO_INTERACTED: CO_INTERACTED_ROWS,
    RelType.SUGGESTED: SUGGESTED_ROWS,
}
PATH_GROUPS_ALL = path_groups(tuple(PathKind), "PATH_GROUPS_ALL")
