// gmem saved queries for Neo4j Browser (and cypher-shell).
// Each block: a "// name:" line, a "// params:" line with example :param values, then
// one statement ending with ";". Set the parameters first, e.g.
//   :param namespace => 'default'
//   :param search => 'fridge apple'
// then run the statement. The tests run every block here against a loaded store.

// name: One task's trace
// params: {"search": "apple"}
// The best full-text match among task texts, with every message of its attempts in
// order (NEXT) and who answered whom (REPLIES_TO).
CALL db.index.fulltext.queryNodes('gmem_query_text', $search) YIELD node AS q
WITH q ORDER BY q.seq DESC LIMIT 1
MATCH trace = (q)-[:HAS_TRACE]->(u:Utterance)
OPTIONAL MATCH talk = (u)-[:NEXT|REPLIES_TO]->(:Utterance)
RETURN trace, talk;

// name: Insights supporting a task
// params: {"search": "apple"}
// The lessons the best-matching task supports or contradicts, and the lessons used
// together with them.
CALL db.index.fulltext.queryNodes('gmem_query_text', $search) YIELD node AS q
WITH q ORDER BY q.seq DESC LIMIT 1
MATCH evidence = (q)-[:SUPPORTS|CONTRADICTS]->(i:Insight)
OPTIONAL MATCH together = (i)-[:RELATED_TO]-(:Insight)
RETURN evidence, together;

// name: The hierarchy of a namespace
// params: {"namespace": "default"}
// The three tiers of one namespace: its insights, the 10 newest tasks with the query
// graph between them, and their traces.
MATCH (q:Query {namespace: $namespace})
WITH q ORDER BY q.seq DESC LIMIT 10
CALL (q) {
  MATCH p = (q)-[:SUPPORTS|CONTRADICTS|SIMILAR_TO|USED_MEMORY_OF]->()
  RETURN p
  UNION
  MATCH p = (q)-[:HAS_TRACE]->(:Utterance)
  RETURN p
  UNION
  MATCH p = (q)-[:SUPPORTS]->(:Insight)-[:RELATED_TO]-(:Insight)
  RETURN p
}
RETURN p;

// name: Tasks by outcome
// params: {"namespace": "default"}
// How the tasks of a namespace went, newest first.
MATCH (q:Query {namespace: $namespace})
RETURN q.text AS task, q.outcome AS outcome, q.attempts AS attempts,
       q.successes AS successes, q.failures AS failures, q.updated_at AS updated
ORDER BY q.seq DESC LIMIT 50;

// name: Strongest insights
// params: {"namespace": "default"}
// Live insights by score, with how many tasks support and contradict each.
MATCH (i:Insight {namespace: $namespace})
WHERE NOT i.retired
OPTIONAL MATCH (i)<-[:SUPPORTS]-(s:Query)
OPTIONAL MATCH (i)<-[:CONTRADICTS]-(c:Query)
RETURN i.text AS insight, i.score AS score, i.roles AS roles,
       count(DISTINCT s) AS supporting, count(DISTINCT c) AS contradicting
ORDER BY score DESC LIMIT 25;
