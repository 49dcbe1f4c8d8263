// gmem saved queries for Neo4j Browser (and cypher-shell).
// Each block: a "// name:" line, a "// params:" line with example :param values, then
// one statement ending with ";". Set the parameters first, e.g.
//   :param namespace => 'default'
//   :param search => 'fridge apple'
// then run the statement. The tests run every block here against a loaded store.

// name: One task's trace
// params: {"search": "apple"}
// The messages of the task whose text best matches $search (full-text score, newest on a
// tie), each captioned "step. role: what it said or did", in order along NEXT, with who
// answered whom (REPLIES_TO): a chain, not a star. The task itself is left out: Browser
// draws every relationship among the nodes it shows, so the task would link to every
// message (HAS_TRACE) and pull the chain into a star around it.
CALL db.index.fulltext.queryNodes('gmem_query_text', $search) YIELD node AS q, score
WITH q ORDER BY score DESC, q.seq DESC LIMIT 1
MATCH (q)-[:HAS_TRACE]->(u:Utterance)
OPTIONAL MATCH talk = (u)-[:NEXT|REPLIES_TO]->(:Utterance)
RETURN u, talk;

// name: Insights supporting a task
// params: {"search": "plate"}
// The lessons that the task best matching $search supports or contradicts (among tasks
// that bear on any lesson), and the lessons used together with them.
CALL db.index.fulltext.queryNodes('gmem_query_text', $search) YIELD node AS q, score
WHERE EXISTS { (q)-[:SUPPORTS|CONTRADICTS]->(:Insight) }
WITH q ORDER BY score DESC, q.seq DESC LIMIT 1
MATCH evidence = (q)-[:SUPPORTS|CONTRADICTS]->(i:Insight)
OPTIONAL MATCH together = (i)-[:RELATED_TO]-(:Insight)
RETURN evidence, together;

// name: The hierarchy of a namespace
// params: {"namespace": "default"}
// The 10 newest tasks of a namespace, the query graph among them (SIMILAR_TO,
// USED_MEMORY_OF) and the insights they support or contradict, with the lessons used
// together among those. Traces are left out (they are most of the nodes): see "One
// task's trace".
MATCH (q:Query {namespace: $namespace})
WITH q ORDER BY q.seq DESC LIMIT 10
WITH collect(q) AS tasks
UNWIND tasks AS q
CALL (q, tasks) {
  MATCH p = (q)
  RETURN p
  UNION
  MATCH p = (q)-[:SIMILAR_TO|USED_MEMORY_OF]->(other:Query)
  WHERE other IN tasks
  RETURN p
  UNION
  MATCH p = (q)-[:SUPPORTS|CONTRADICTS]->(:Insight)
  RETURN p
  UNION
  MATCH p = (q)-[:SUPPORTS|CONTRADICTS]->(:Insight)-[:RELATED_TO]-(:Insight)<-[:SUPPORTS|CONTRADICTS]-(other:Query)
  WHERE other IN tasks
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
