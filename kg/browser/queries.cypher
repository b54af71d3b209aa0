// kgrec: ready-made queries for Neo4j Browser.
//
// Set the parameters once per Browser session (edit the values), then run any query below.
// Every query is scoped to one domain: several domains share the database without mixing.
:param domain => 'social';
:param user_id => 'u0001';
:param item_id => 'i0001';

// 1. A user's neighbourhood: their 25 latest interactions, what those items are about, whom they follow.
MATCH (u:User {domain: $domain, id: $user_id})-[r:INTERACTED]->(i:Item)
WITH u, r, i ORDER BY r.ts DESC LIMIT 25
OPTIONAL MATCH about = (i)-[:IN_CATEGORY|MENTIONS]->()
OPTIONAL MATCH follows = (u)-[:FOLLOWS]->(:User)
RETURN u, r, i, about, follows;

// 2. An item's entities, strongest first, and the other items that mention the same entities.
MATCH (i:Item {domain: $domain, id: $item_id})-[m:MENTIONS]->(e:Entity)
WITH i, m, e ORDER BY m.confidence DESC LIMIT 15
OPTIONAL MATCH shared = (e)<-[:MENTIONS]-(:Item)
WITH i, m, e, collect(shared)[..5] AS shared
RETURN i, m, e, shared;

// 3. Why an item was recommended to a user: the RECOMMENDED edge and up to 5 paths of each kind
//    (liked by people with the same taste, liked by someone they follow, shares an entity or a
//    category with something they liked).
MATCH (u:User {domain: $domain, id: $user_id}), (i:Item {domain: $domain, id: $item_id})
OPTIONAL MATCH rec = (u)-[:RECOMMENDED]->(i)
CALL {
  WITH u, i
  MATCH p = (u)-[:INTERACTED]->(x:Item)<-[:INTERACTED]-(o:User)-[:INTERACTED]->(i)
  WHERE o <> u AND x <> i
  RETURN p LIMIT 5
  UNION
  WITH u, i
  MATCH p = (u)-[:FOLLOWS]->(:User)-[:INTERACTED]->(i)
  RETURN p LIMIT 5
  UNION
  WITH u, i
  MATCH p = (u)-[:INTERACTED]->(x:Item)-[:MENTIONS]->(:Entity)<-[:MENTIONS]-(i)
  WHERE x <> i
  RETURN p LIMIT 5
  UNION
  WITH u, i
  MATCH p = (u)-[:INTERACTED]->(x:Item)-[:IN_CATEGORY]->(:Category)<-[:IN_CATEGORY]-(i)
  WHERE x <> i
  RETURN p LIMIT 5
}
RETURN rec, p;

// 4. A user's recommendations as a table: rank, score and the reason the scorer gave.
MATCH (u:User {domain: $domain, id: $user_id})-[r:RECOMMENDED]->(i:Item)
RETURN r.rank AS rank, i.id AS item_id, i.title AS title, r.score AS score, r.reason AS reason,
       r.run_id AS run_id
ORDER BY rank;

// 5. The most connected entities of a domain (by how many items mention them).
MATCH (e:Entity {domain: $domain})
RETURN e.name AS entity, e.type AS type, e.id AS entity_id,
       COUNT { (e)<-[:MENTIONS]-(:Item) } AS items
ORDER BY items DESC, entity
LIMIT 25;

// 6. The same as a picture: the 10 most connected entities and a few items around each.
MATCH (e:Entity {domain: $domain})
WITH e, COUNT { (e)<-[:MENTIONS]-(:Item) } AS items
ORDER BY items DESC, e.id LIMIT 10
MATCH (e)<-[m:MENTIONS]-(i:Item)
WITH e, collect([m, i])[..8] AS around
UNWIND around AS pair
RETURN e, pair[0] AS m, pair[1] AS i;

// 7. A domain at a glance: nodes per label, relationships per type, and the build it holds.
MATCH (n {domain: $domain})
WITH labels(n)[0] AS what, count(*) AS n
RETURN what, n
UNION ALL
MATCH (a {domain: $domain})-[r]->()
WITH type(r) AS what, count(*) AS n
RETURN what, n
UNION ALL
MATCH (m:KgrecMeta {domain: $domain})
RETURN 'build ' + m.build + ' (schema ' + toString(m.schema_version) + ', complete: '
       + toString(m.complete) + ')' AS what, 1 AS n;

// 8. People a user may want to follow (social): the SUGGESTED edges of the latest run, and the
//    friends they share with each suggested person.
MATCH (u:User {domain: $domain, id: $user_id})-[s:SUGGESTED]->(o:User)
WITH u, s, o ORDER BY s.rank LIMIT 10
OPTIONAL MATCH shared = (u)-[:FOLLOWS]-(:User)-[:FOLLOWS]-(o)
RETURN u, s, o, collect(shared)[..3] AS shared;
