"""``reports/performance.md``, ``reports/performance.json`` and the latency-versus-load plot,
from one serving benchmark run and the ranker scaling results."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from movierec.benchmarks.ranker_scaling import ScalingResult
from movierec.benchmarks.serving import ServingBenchResult
from movierec.evaluation.metrics import t_interval95

HIT_RATIO_GOAL = 0.60
HIT_P99_GOAL_MS = 50.0
MISS_RATIO_GOAL = 0.25
MISS_P99_GOAL_MS = 100.0
RANKER_GOAL_MS = 50.0

TARGET_LABELS = {
    "bare-1w": "bare endpoint, 1 worker",
    "bare-2w": "bare endpoint, 2 workers",
    "gateway-hit": "gateway, cache hit",
    "gateway-miss": "gateway, cache miss",
    "ranker-topn": "ranker /v1/topn alone",
}


DEVELOPMENT_FINDINGS = """
## Findings from profiling during development

Profiles taken with this command's py-spy step on the shared 2-core development machine
(2026-11-22, load average 9 to 14, so shares matter more than times). What was found, and what
was done or is proposed:

1. **Fixed: a failing import on every HTTP hop.** httpcore calls `import sniffio` each time it
   sets up a lock; `sniffio` was not installed (newer anyio no longer needs it), so every call
   failed and scanned `sys.path`. That was 59% of the gateway's busy samples on the cache-miss
   path. `sniffio` is now a pinned dependency; the bucket is gone from later profiles.
2. **Ranker, cache miss: explanations, not the model.** `ItemIndex.nearest` ("because you liked",
   cosine against up to 500 liked movies for each of the 100 candidates) was most of the
   ranker's busy samples. **Done:** ids are mapped to rows in numpy and the answer is built
   without a Python loop per reference (1.7 -> 1.0 ms a request, same answers). All 100
   candidates are still explained: the policy picks the k shown from all of them, and asking
   the ranker again after the policy would add a hop.
3. **Gateway, cache miss: building and decoding.** **Done:** the policy request is validated in
   one pass from dicts (100 `RankCandidate` objects were ~18% of the gateway's busy time), the
   ranker and policy bodies are serialised once by pydantic-core (`content=model_dump_json()`),
   the policy's answer is parsed with `model_validate_json`, and the answer is sent as
   `model_dump_json` bytes (FastAPI no longer validates it again against the response model).
4. **Feedback hop: one PostgreSQL query per miss.** **Done:** the gateway keeps the feedback
   service's answer for a user as `recs:{user}:history` in Redis (the cache TTL), read in the
   same round trip as the list; it sits under the user's `recs:` prefix, so the invalidation
   after a feedback event and the deletion of a user drop it with the lists. A user's first
   miss still asks the feedback service.
5. **Cache hit: framework, middleware and two Redis round trips.** Request context is pure ASGI
   middleware. **Done:** a hit answers the stored JSON body as it is (stored with
   `"cached": true`; no parsing, validation or serialisation), the per-client rate limit and the
   cache read go to Redis in one pipeline (EVAL of the token bucket + MGET: the route checks
   its limit itself and is declared before `AccessControl.install`), the body timeout uses
   `asyncio.timeout` (no task per body message) and metric children are looked up once. What
   is left is uvicorn/Starlette/FastAPI (~70% of the hit's busy samples), sending a ~10 KB body
   (the bare endpoint sends 1 KB), and redis-py's pipeline (~17%).
6. **Ranker at 10^6 items: the filter mask, not the product.** On an H100, `ItemIndex.top_n`
   over 10^6 items took 0.45 ms, but the host-side mask took about 72 ms: every request mapped
   all item ids to catalog rows (`CatalogColumns.positions`, a `searchsorted` of 10^6 ids) and
   excluded watched movies with `np.isin`. **Done:** the ranker now keeps `FilterColumns` (the
   catalog's filter columns aligned with the index rows, as tensors on the index's device),
   built once per model version and rebuilt when a reload or an added movie replaces the index
   or the catalog's columns; a request runs a few tensor comparisons and excludes watched movies
   by row. Measured on this machine under load with `movierec bench ranker --threads 1`
   (before/after in the same conditions, 20 requests per size): mask at 10^6 items 348 -> 42 ms,
   filtered top-20 575 -> 188 ms p50; what is left is the matrix-vector product itself
   (140 ms here under load; see the table above for this run's figures). On the lent H100
   machine (2026-11-22 18:55 UTC, `movierec bench ranker --device cuda` and, on its 16-core host
   CPU, `movierec bench ranker --threads 1 --repeats 30`): filtered top-20 over 10^6 items
   73.5 -> 1.2 ms p50 on the GPU (mask 72 -> 0.7 ms), and 49.9 ms p50 on one CPU thread
   (plain product and top-k 36 ms, mask 10 ms), just under the 50 ms goal on a quiet CPU.
7. **Gateway and ranker, cache miss: JSON.** **Done:** the ranker's `/v1/topn` answer is
   serialised once by pydantic-core (it was validated again by FastAPI's response model), the
   gateway decodes it with `model_validate_json` (no intermediate dict tree), and the gateway
   remembers poster lookups per movie (a missing poster is looked up again after a minute).
8. **Every service: the garbage collector rescanning what was loaded.** Full collections, set
   off by request garbage, walked the catalog and the model every time (they showed up as
   ~15% of the gateway's busy samples inside whatever allocation triggered them). **Done:**
   `gc.freeze()` at the end of start-up (`movierec_service.heap`). CPU a request, same load:
   cache hit 1.67 -> 1.41 ms (gateway), miss 8.5 -> 6.0 ms (gateway) and 4.3 -> 2.9 ms (ranker).
9. **Gateway, cache miss: the HTTP client.** httpx's default transport (httpcore on anyio with
   h11) cost ~1.5 ms of CPU a call on this machine against 0.2 ms for the same exchange on
   asyncio streams (bare endpoint, 8 callers). **Done:** the gateway's ranker, policy and
   feedback clients use `movierec.clients.keepalive.KeepAliveTransport`, a lean HTTP/1.1
   keep-alive transport under the same httpx client (timeouts, errors and request ids
   unchanged; a request the server dropped on a kept connection is sent again once). Gateway
   CPU on a miss ~12 -> ~8 ms before item 8.
10. **Ranker and policy: a thread hand-off per request.** Both ran their (millisecond) work in
    FastAPI's thread pool. **Done:** `/v1/topn` and `/v1/rank` run on the event loop (the
    policy's pointer check and version loads still go to a thread); the policy's answer is
    sent pre-serialised.
11. **Ranker at 10^6 items: the mask again.** **Done:** the genre/year/rating part of the mask
    is kept per filter combination (16 per model version, least recently used out), so a
    request pays only for cloning it and excluding its watched movies (9.2 -> 0.6 ms at 10^6
    items); the table's `mask, new filters` column is the cost for filters not seen before.
    What is left is the matrix-vector product (~25 ms: 256 MB of float32 read per request) and
    top-k (~4 ms).
12. **Where a miss still spends its CPU** (CPU milliseconds a request by process, 8 connections,
    after the items above, users' histories cached): gateway ~6, ranker ~3, policy ~1.5
    (greedy; a DQN policy adds its forward pass), feedback ~0.2 (a user's first miss ~2),
    Redis ~0.3: about 11 ms, against ~0.7 ms for the bare endpoint, so on 2 cores the miss
    path is CPU-bound near 0.1x of the bare endpoint. Four Python HTTP servers and three
    client hops per miss are most of it; what is left in the gateway is uvicorn/FastAPI for
    the incoming request, two client calls, two Redis round trips and building 20 explained
    items.
13. **The ranker table was measured at the wrong width.** It used 64-dimensional vectors while
    the fusion model's ranking head serves 128 (``rank_dim``); at 128 the fp32 product alone
    reads 512 MB per request at 10^6 items, about twice the time. **Done:** the benchmark uses
    the served width, and on the CPU a catalog of 10^5 items or more is scanned first in half
    precision (half the bytes), its best k + 256 rescored in fp32, with a fall back to the
    full fp32 scan whenever the half-precision error bound cannot prove the shortlist holds
    the answer, so the lists are exactly the fp32 ones (tested against the fp32 scan, near ties
    included). Under load, 10^6 x 128: 100 -> 74 ms.
14. **Policy service: torch on two threads.** The DQN's forward pass over 100 candidates
    took ~6 ms with torch's default two threads beside the gateway and ranker on this
    2-core machine, ~0.5-0.8 ms on one (the threads spin for a busy core). **Done:** the
    policy service runs torch on one thread, like the ranker. uvicorn now also runs on
    httptools and uvloop and redis-py parses with hiredis (for every service and the bare
    endpoint alike).
15. **Closed loop: retraining made the policy worse at first.** A 10-minute run with retraining
    (CTR 0.63, 0.59, 0.51 in its first three minutes) against a control run without it (CTR
    0.68-0.76 throughout) showed the fine-tuned versions served worse: each round fine-tuned on
    the ~200 events since the last version and then valued the candidate off-policy on those
    same slates, where it always looked at least as good, so every candidate was published.
    **Done:** the candidate is valued on held-out users' slates (30%, seeded) that it never
    trained on; that alone still let noise through (CTR 0.63 vs the control's 0.73 in the first
    half, ~40 versions in 10 minutes), so a candidate is now published only when the one-sided
    95% lower bound of its SNIPS gain (paired bootstrap over the held-out users) is above zero.
    Finding 17 is what the run after both changes showed.
16. **Cache hit: FastAPI's routing, dependencies and exception layers were half of it.**
    An ad-hoc py-spy recording of the gateway alone under `wrk` (2026-11-23, a features build
    beside it; not this command's profile step, whose table above is the run after the change):
    the route's own work was 27% of the gateway's busy samples, FastAPI's request handling around
    it (dependency solving, body parsing, the exception and exit-stack layers) about 45%, the
    redis-py pipeline 18%.
    **Done:** `CacheHitShortcut` (`movierec_gateway/cache_hit.py`), a pure ASGI layer inside
    the request context (request id, metrics and log line still apply), reads the body, checks
    the caller's credential and, for a known user, makes the one Redis round trip; a hit is sent
    as stored, anything else goes on to the FastAPI route (the one definition of the endpoint:
    validation, errors, OpenAPI) with the body replayed and the round trip's result attached,
    so nothing is asked twice. The rate limit and the cache read are now one command (the
    token-bucket script GETs the keys after its check: one EVALSHA instead of a pipeline of
    EVAL + MGET), and FastAPI's OpenTelemetry hooks are off (they looked for providers on every
    request, ~8% of a hit in the same ad-hoc recording). The tables above are the run after
    these changes.
17. **Closed loop: the gate published three versions in two minutes.** With the 95% bound, the
    second came 26 s after the first, and CTR fell from 0.695 to 0.639 while the control's held
    (0.731 to 0.714). The same served version was checked every few minutes, each time at 5%,
    on growing evidence (and, just after a publish, on a few hundred events): repeated tests
    let noise through.
    **Done:** the k-th check of one served version uses a one-sided bound at 5% x 6/(pi^2 k^2)
    (96.96% first, 99.24% next; 5% over all checks together), counted in the retraining state
    file; a check needs at least 20 held-out users, and the same version is checked again only
    on 1.5 times the slates of its last check. The first run after this change (128 wide)
    checked the served version 4 times (after 839, 1,307, 1,976 and 2,978 usable slates; the
    Celery worker's log) and published nothing, with lower bounds of -0.09, -0.26, -0.37 and
    -0.77. Its CTR gap to the control (-0.038 +- 0.047) was as large as the one that looked like
    harm before, with one policy served throughout: that gap was noise. The closed-loop section
    above is a later run at 256 wide: again 4 checks (after 859, 1,326, 1,992 and 2,992 slates),
    lower bounds -0.13, -0.11, -1.03 and -1.49, nothing published, and a
    `current_propensity_gap` of 0.57-0.62 at every check.
    Then, the check could not value the decision that was made. The served policy's own SNIPS
    on the held-out slates moved between 0.40 and 1.74 from one check to the next, which an
    on-policy value cannot do: the check recomputed the policy's propensities over the 20
    shown movies, with its own item scores and a state rebuilt from the log, while the served
    slate was drawn from 100 candidates with the ranker's scores and the gateway's recent
    movies. Each check reports that mismatch as `current_propensity_gap` (mean |recomputed -
    logged propensity|; 0 when the check sees the decision as made). **Done:** decision
    logging, finding 20.
18. **The served width doubled, and the machine matters more than the width.** The fusion
    model's served vectors now carry a rank-128 item-item (EASE) term after the ranking head's
    128 columns (issue 4: warm Recall@20 0.309 -> 0.333, `reports/quality.md`), so the ranker
    multiplies 256-wide vectors and the policy's inputs grow with them. The first run at 256 was
    on a machine whose bare endpoint served 1,458 req/s (the run before: 5,993): hit 0.72x with
    p99 56.6 ms, miss 0.044x, ranker 10^6 170 ms. Back to back on it, `movierec bench ranker
    --sizes 1000000 --repeats 30 --dim 128` and `--dim 256` gave a filtered p50 of 95.3 and
    125.4 ms (the session before, on a faster machine: 28.6 and 38.2 ms): the width costs about
    1.3x, the machine the rest.
19. **The cache-hit ratio moves from run to run, not only with the machine.** On the next
    session's machine (bare endpoint 4,984 and then 6,100 req/s at 32 connections) a first run
    gave hit 0.57x with p99 19.4 ms, and the second, the tables above (made after the closed
    loop below, same code, an hour later), 0.79x with p99 10.6 ms; the two machines before
    measured 0.75x and 0.72x. So one run can fall on either side of the 0.60x goal; read the
    ratio over runs, not from one. In the hit profile, redis (the one EVALSHA) and the
    per-request log line and metrics are what the bare endpoint does not pay; both were kept
    (finding 16 removed the rest).
20. **Closed loop: the check values the decisions as they were made.** The gateway logs each
    list the policy chose for a known user (the ranker's 100 candidates and scores, the recent
    movies sent, the slate and its propensities) as a `ServedDecision` in a capped Redis stream,
    in its cache write's round trip (~33 us of CPU and ~1.8 KB a miss, timed ad hoc); answers
    carry its `decision_id`, which Locust and the web page send back with feedback, and the
    retraining reads the log (the last 30 s are left for the next round) and joins the events
    to it. Every served list is now a slate, skipped ones included: before, only lists someone
    reacted to reached the log, so the check valued a sample already conditioned on a click.
    The run above (10 minutes, 3,482 logged decisions): the first check of the starting version
    saw its decisions exactly (`current_propensity_gap` 0.000) and published a candidate
    (SNIPS 1.026 against the served 0.110, lower bound of the gain +0.028 at 96.96%) in minute
    4; the two checks of the new version kept it (bounds -0.108 and -0.088). Their gap of 0.33
    mixed in decisions the old version made between the publishing check's read and the policy
    service's reload; the gap now counts only the served version's own decisions. **The
    published version did not raise CTR**: 0.706, 0.720, 0.690, 0.646 and 0.593 in minutes 5-9
    against the control's 0.732, 0.780, 0.698, 0.616 and 0.630 (the learning run's rise over
    the control, -0.024 +- 0.048). So the check now measures the right decisions but one
    estimate of a gain was still not borne out: SNIPS over per-position units of a candidate
    far from the logging policy rests on a few large weights. **Proposed:** value the whole
    slate's probability or cap the weights, and require a candidate to stay close to the served
    policy. Lists cached before the publish were still served for up to the cache TTL (600 s),
    which is why the old version shows up in minutes 7 and 8.
21. **Ranker at 10^6 items: the product read 1 GB a request.** At the served width (256) the
    fp32 item matrix of 10^6 movies is 1 GB, read at about 8 GB/s by one thread; the half
    precision first pass (finding 13) halved that. **Done:** a CPU catalog of 10^5 items or more
    is scanned first in int8 (fbgemm's dynamic int8 linear, per-row scales: 256 MB) and its best
    k + 1,024 are rescored in fp32. On a quiet machine, back to back (`movierec bench ranker
    --repeats 30`, then with `--no-int8-first`): filtered top-20 p50 at 10^6 items 127.5 ms
    (fp32 alone) -> 46.4 ms, at 10^5 items 14.8 -> 6.4 ms; top-100 (`--k 100`) at 10^6 items
    139.6 -> 46.5 ms; every list identical to the fp32 scan's. A first version proved each list
    exact with a worst-case bound on the int8 error and scanned in fp32 when it could not: on
    random isotropic vectors it proved every list, but on the served model's 9,742 vectors
    resampled to 10^6 with noise (ad hoc) it proved none, while all 40 top-20 lists it checked
    were identical to fp32's anyway (the largest error seen was an eighth of the bound). So the
    proof went; the benchmark's synthetic vectors are now clustered with unequal norms like the
    served ones, and it reports how often the lists equal the fp32 scan's. Building the int8 copy
    takes 10-20 s at 10^6 items, once per model version; an added movie does not rebuild it (its
    row is scored in fp32). The served catalog (9,742 movies) is still scanned in fp32 only.
22. **Closed loop from a weak starting policy: CTR rose, but one run each does not exclude
    chance.** The DQN served in finding 20 was trained (1,000 iterations) on the same simulator
    the Locust users follow, so ten minutes of feedback had little to teach it. The run above
    starts from a DQN trained for 20 iterations (`movierec rl train --set dqn.iterations=20`;
    then `movierec bench closed-loop --no-retrain`, `movierec rl use` that version and
    `movierec bench closed-loop`, with the serving runs' URLs): CTR about 0.56 against 0.70.
    The worker checked five times and published once (check 2, minute 5: SNIPS 0.224 against
    0.124, lower bound of the gain +0.045 at 99.24%); CTR in minutes 5-9 was 0.635, 0.580,
    0.709, 0.609 and 0.587 against the control's 0.527, 0.530, 0.620, 0.548 and 0.583. The
    learning run rose +0.047 +- 0.037 from its first half to its second, the control -0.001
    +- 0.035, so learning adds +0.048 +- 0.051 (95%, one run each): the direction a learning
    system should show, but the interval still holds zero; several runs per arm would be needed
    to settle it. The three checks after the publish kept the new version (candidates
    fine-tuned on 600-1,700 slates valued far below it).
23. **Closed loop over three seeds: a rise where a version was published, noise where none was;
    and a state that leaked from one run into the next.** Each seed now keeps its own pair of
    records (control first, then learning, from the same 20-iteration DQN; the Redis database
    was flushed by hand between runs so that no list cached by another run's policy was served).
    Seeds 1 and 2 started from a new 20-iteration DQN (the model had been retrained). Seed 1
    published once (minute 4) and rose +0.107 against its control's +0.003; seed 2 published
    nothing, and its two runs, serving the same policy throughout, differed by -0.029, which is
    the run-to-run noise. Over the three seeds learning adds +0.041 (sd 0.067; the t interval over
    seeds, +-0.166, holds zero), so the evidence is still not beyond chance.
    The first learning run of seed 2 showed a defect: the retraining state remembered the
    seq of the events it had read in the *previous* run's scratch database, so once the new
    database's seq passed it, each check read only the events after that number (201 of ~3,400 at
    its second check, whose SNIPS were both 0). **Done:** the state records which database it is
    of (`FeedbackStore.identity`, name and OID); a state of another database is dropped whole.
    The table above is seed 2's learning run after the fix (its checks valued the served policy
    at 0.112-0.120 each time, against 0.000-0.113 before); the run before it, with the defect,
    gave -0.035. In seeds 0 and 1 the first check after a publish valued the newly served
    version at 0.025-0.027 (later checks 0.035-0.128) against ~0.12 for the version before,
    while CTR did not fall: explained in finding 24.
24. **Closed loop: the first check after a publish, feedback lost at every publish, and how
    many units a candidate's value rests on; six seeds.**
    - **A defect (fixed).** A publish read the feedback events to the end but the decision log
      only up to 30 s before (a decision waits `settle_s` for its feedback). The next round read
      the events after the publish's last one, so the decisions of those 30 s (about 145 lists at
      20 users) came with none of their feedback: valued as lists nobody clicked, and fine-tuned
      on as skips. **Done:** the next round reads the events again from the first one that names
      a decision not read yet, and does not use twice the events that name no decision (a test
      with real PostgreSQL and Redis: the next round values those decisions exactly as with all
      their feedback).
    - **Whose lists a check sees.** The first check after a publish comes a minute or two later
      (it needs only 20 slates), and many of its slates are the earlier version's decisions: in
      seed 0, all of them (no held-out slate of its own, so no propensity gap). Each check now
      reports how many slates the served version chose itself (`served by it`). After the fix,
      the first checks after a publish (seeds 3 and 5; 380 of 632 and 567 of 828 slates its own)
      valued the new version at 0.149 and 0.105, in line with the ~0.12 before it.
    - **How many units a value rests on.** Each check also reports the effective sample size
      (ESS) of the candidate's importance weights over the held-out units. With serving epsilon
      0.05 over 100 candidates, a movie the candidate would place where the served policy did not
      weighs about 0.0005 / 0.95, so a candidate fine-tuned far from the served policy is valued
      on a few explored positions: in seeds 4 and 5, 5 of the 7 kept candidates had an ESS of
      1.6-4.0 (of 2,330-7,180 units) and values of 0.014-1.052, and the bootstrap bound kept them
      all (-0.105 to -0.128). The 2 published in seed 5 had an ESS of 326 and 381 (of 1,880 and
      2,800 units): published on evidence, not on a handful of units. A candidate that moves
      far cannot be valued at all; fine-tuning that stays nearer the served policy, or serving
      with more exploration, would let more candidates be judged (serving exploration: finding 26).
    - **Seeds 3-5**, run after the fix from a new 20-iteration DQN (this checkout trained the
      model and the policy again). The benchmark now clears what earlier runs left in its Redis
      itself (cached lists, and queued Celery tasks: each control run's feedback service queued
      8,300-8,400 retrainings and cache invalidations with no worker to run them, which the next
      learning run's worker would have worked through first; seeds 0-2 were cleared by hand).
      Those counts were printed by the runs of seeds 3-5; later runs keep them in their records
      (`cleared_from_earlier_runs`).
      Learning adds +0.041 (2 versions published), +0.025 (none) and +0.111 (2). **Over the six
      seeds: +0.050, sd 0.052, 95% t interval +-0.055: not distinguishable from zero**, if only
      just. Where a version was published (seeds 0, 1, 3, 5) learning added +0.041 to +0.111;
      where none was (seeds 2, 4), -0.029 and +0.025, the two arms serving the same policy: the
      run-to-run noise.
25. **Closed loop: a publish now reaches every user at once; the check cannot see real gains.**
    - **Cached lists across a publish (fixed).** A user's cached list went only with their own
      feedback, so after a publish a user who skipped a list was served the earlier version's
      list again for up to the cache TTL (600 s): seed 3's minute 4 served three versions. A
      publish (the Celery task, `rl retrain`, and `rl use` with a Redis configured) now drops
      every cached list at once and again 5 s later, as the policy service looks for a new
      version every 2 s (tested with a real worker and Redis). In seed 6, the one of seeds 6-9
      that published, the earlier version was served only in the minute of the publish.
    - **Follow-up tasks with no worker.** Cache invalidations and retraining requests expire
      unrun after 600 s (`MOVIEREC_FEEDBACK_FOLLOW_UP_EXPIRES_S`): a control run still queues
      about 8,200 of them (`cleared_from_earlier_runs` in its record), which a worker starting
      later now drops instead of running.
    - **Seeds 6-9**, from a new 20-iteration DQN (this session's code; the table above gives them
      as their own series) published 1, 0, 0 and 0 versions; learning added -0.061, -0.001,
      -0.023 and +0.084 (mean -0.000, 95% t +-0.098). Where nothing was published both arms
      served the same policy, so seeds 7-9 (and 2 and 4 before) show the run-to-run noise:
      -0.029 to +0.084. **Over all ten seeds learning adds +0.030, 95% t interval +-0.042: not
      distinguishable from zero.** The next point says why so little was published.
    - **Why so few versions are published** (`movierec rl fine-tune-study`, the table after the
      closed-loop runs; seeds 0-2, 200 logged and 200 other simulated users). Every fine-tuned
      candidate, 1 to 20 epochs, served better than the served policy on-policy: true CTR gains
      +0.048 to +0.088, each interval above zero. The check would have published none of the 12:
      the ESS of their weights was 3.4-9.3 of 4,200-4,700 units and every bound was negative.
      Fewer epochs do not help (1 epoch is as far as 20). A movie the candidate puts first where
      the served policy explored weighs about 0.95 / 0.0005, so a handful of units carry the
      estimate, whose point values swing from -0.15 to +0.42. Capping the weights at 10 gave
      an ESS of 300-920 and a positive bound for 11 of the 12; it refused the negative control
      (an untrained network, true gain -0.077, -0.006, -0.062) on every seed. **Not adopted:**
      the cap was chosen after seeing this study, and it is biased (seed 1's control was
      estimated at +0.057 against a true -0.006; with more evidence its bound would pass). The
      next step is a check whose estimate is not biased this way (a reward model with a
      doubly robust correction, or serving exploration that covers nearby lists), tested first
      with this study, its negative control included, then in the closed loop. (These figures
      are for dqn-20261124T044615-a00978, whose records are in git history at 4f98663; finding
      26 reran the study on a newer policy, and the table gives those runs.)
26. **Serving exploration that covers nearby lists lets the check see real gains.** The served
    policy now explores with a softmax: 5% of positions still go to a uniform draw, the rest to
    a softmax of the Q-values over `dqn.serving_temperature` standard deviations of them,
    instead of always the best (`movierec.rl.slate`; a temperature in standard deviations
    because one request's Q-values can differ by a few hundredths). A candidate fine-tuned
    from the served policy mostly reorders movies the served policy also scores near the top,
    which a softmax logs often and epsilon-greedy almost never. `movierec rl fine-tune-study
    --temperature T`, seeds 0-2, on one 20-iteration DQN (dqn-20261124T074308-00f6ef), the same
    network served four ways (the summary table after the closed-loop runs):
    - epsilon-greedy (T 0): ESS 5-10 of 4,450-4,840 units; the check publishes **none** of the
      12 fine-tuned candidates although every one served better (true gains +0.017 to +0.059);
    - T 0.5: ESS 94-719; 5 of 12 published (true gains +0.019 to +0.044);
    - **T 1: ESS 544-2,274; 7 of 12 published** (true gains +0.003 to +0.030; the 20-epoch
      candidates, further from the served policy, were never published);
    - T 2: ESS 3,202-4,689; 7 of 12 published (true gains +0.001 to +0.032);
    - every negative control (an untrained network, true gains -0.015 to -0.145) was refused at
      every temperature, with bounds -0.019 to -0.187;
    - exploring this way did not cost CTR: the served policy's on-policy CTR over the three seeds
      was 0.651 (T 0), 0.661 (T 0.5), 0.663 (T 1) and 0.646 (T 2), differences well within the
      spread over seeds (0.628-0.674 per seed). In this simulator the DQN's Q order is not much
      better than its near neighbours.
    - Over whole sessions, `movierec rl evaluate` (5 seeds, held-out simulated users,
      `reports/rl.md`) now also values the trained DQN as served: +13.3% watch time over the
      greedy ranker (intervals apart) against +15.5% without exploration, catalog coverage 0.299
      against 0.244.
    - The estimator is the check's own (SNIPS with the logged propensities): unbiased up to
      self-normalisation, unlike the capped weights finding 25 rejected. The temperature was
      chosen after seeing this study (1 over 0.5 for its ESS, over 2 for its CTR), on simulated
      users; it is the default for newly trained policies (`rl train`). Policies published
      before the setting existed keep epsilon-greedy serving.
    - **Retraining fine-tunes for 3 epochs, not 20** (`rl.online.FINE_TUNE_EPOCHS`): at T 1 the
      3-epoch candidates were published on all three seeds (true gains +0.024 to +0.030), the
      20-epoch ones on none.
    - **Closed loop, seeds 10-12**, from dqn-20261124T080457-cedfb9 (the study's network, saved
      with T 1; the table above gives them as their own series). Seed 10 ran before the epochs
      change (20 epochs): 3 checks, ESS 353-911 (against 2-400 for epsilon-greedy serving in
      seeds 4-5), none published. Seeds 11 and 12 (3 epochs): 4 checks each, ESS 815-3,227,
      **2 and 1 versions published** (seeds 6-9 published 1 in 4 runs); every check saw the
      served decisions as made (propensity gap 0). Learning added -0.097, +0.029 and +0.046.
      Seed 10 published nothing, so both of its arms served the same policy: its -0.097 is
      run-to-run noise, as large as any effect here. Over the 13 seeds then, learning added
      +0.021, 95% t interval +-0.038.
    - **Closed loop, seeds 13-15** (2026-11-24, 3 epochs throughout), from
      dqn-20261124T104328-0d5343 (`rl train --set dqn.iterations=20` again in a fresh checkout,
      saved with T 1): every run published 1 version (check ESS 1,030-2,601). Learning added
      +0.050, +0.030 and +0.079: each time the control's CTR fell from the first half to the
      second (-0.029 to -0.069) while the learning run's held (-0.004 to +0.009).
      Over the 16 seeds then, learning added +0.027 (sd 0.058), 95% t interval +-0.031.
    - **Closed loop, seeds 16-18** (2026-11-24, on the faster host of finding 27), from
      dqn-20261124T145700-07421b (`rl train --set dqn.iterations=20` in another fresh checkout,
      T 1): 4 checks a run (ESS 968-3,025), 1, 2 and 1 versions published, each with a lower
      bound of +0.0003 to +0.009, just above zero. **Learning added -0.020, -0.035 and
      -0.036**: this time the control's CTR rose from the first half to the second (+0.014 to
      +0.039) and the learning runs' less (-0.022 to +0.018). The series' own interval
      (-0.030 +- 0.023) is below zero, but three seeds with an sd of 0.009 give a narrow interval
      by chance as easily as by effect. These seeds were added after seeing the earlier ones, to
      narrow the total's interval, so the total is not a test either: **over all 19 seeds
      learning adds +0.018 (sd 0.057), 95% t interval +-0.027, not distinguishable from zero.**
      The study's true gains of published candidates (+0.003 to +0.030 at T 1) are about this
      noise's size; pinning them down in the closed loop would take longer runs or far more
      seeds, not a better check.
    - **What the softmax costs in serving.** Each position of a slate takes a softmax over the
      candidates left, where epsilon-greedy took the best one. `movierec bench slate-draw`
      (a slate of 20 from 50 candidates, seeds 0-2, 2,000 draws each, machine otherwise idle),
      per slate, on the slower host of finding 27 (2026-11-24 10:44 UTC) and then on the faster
      one (15:04 UTC): epsilon-greedy 163 +- 2 and 105 +- 0 us; the softmax as first served
      (`src/movierec/rl/slate.py` as of 48fdb55, the bench run on it) 899 +- 46 and 442 +- 3 us;
      the softmax now (9462aad), which draws the same slates bit for bit with less per-position
      overhead, **356 +- 0 and 227 +- 0 us**. In the first serving run
      with the softmax (2026-11-24 09:18 UTC, the slower draw) the policy service had
      1,741 CPU samples in the miss profile against 1,377 in the last run without it, and 12 of
      7,420 miss requests fell back to the ranker's order because the policy did not answer in
      time (10 more to popular movies, the ranker not answering), where the last run had none.
      The miss path stayed at 0.038x the bare endpoint (0.035x in the last run without it; the
      machine was slower: bare 3,632 against 5,178 req/s).

27. **The same code on two hosts.** The serving runs of 2026-11-24 at 12:27 and 15:03 UTC (kept
    as `reports/measurements/performance_run_20261124T1227.md` and `..._T1503.md`) ran
    the same serving code on machines that both report "AMD EPYC", with torch picking AVX2
    kernels on the first and AVX512 on the second (each header names its own). The bare endpoint at
    32 connections served 3,752 and 6,138 req/s; the cache hit 0.72x and 0.79x of it (p99 19.0
    and 10.3 ms); the cache miss 111.7 and 187.0 req/s (0.03x both times, p99 674 and 302 ms);
    the ranker's filtered top-20 over 10^6 items took 50.9 and 30.7 ms, so **its absolute goal
    failed on the first host and passed on the second**. The ratio goals came out the same on
    both. The policies differed (a closed-loop-published version, then a freshly trained one),
    which does not touch the ranker figures.
"""


@dataclass(frozen=True)
class Goal:
    name: str
    target: str
    measured: str
    passed: bool | None
    """None: not measured in this run."""


def headline(result: ServingBenchResult, cpu_scaling: list[ScalingResult], gpu_scaling: list[ScalingResult] | None = None) -> dict:
    c = result.config["headline_connections"]
    bare, hit, miss = result.run("bare-1w", c), result.run("gateway-hit", c), result.run("gateway-miss", c)
    bare2 = result.run("bare-2w", c)
    out = {
        "bare_rps": bare.rps if bare else None,
        "hit_rps": hit.rps if hit else None,
        "miss_rps": miss.rps if miss else None,
        "hit_ratio": round(hit.rps / bare.rps, 3) if bare and hit and bare.rps else None,
        "miss_ratio": round(miss.rps / bare.rps, 3) if bare and miss and bare.rps else None,
        "hit_p99_ms_32": result.run("gateway-hit", 32).p99_ms if result.run("gateway-hit", 32) else None,
        "miss_p99_ms_32": result.run("gateway-miss", 32).p99_ms if result.run("gateway-miss", 32) else None,
        "ranker_top20_ms": {str(r.items): r.filtered_ms_p50 for r in cpu_scaling},
        "bare_2w_rps": bare2.rps if bare2 else None,
        "connections": c,
        "gateway_workers": 1,
    }
    if gpu_scaling:
        out["ranker_top20_ms_gpu"] = {str(r.items): r.filtered_ms_p50 for r in gpu_scaling}
        out["gpu_device"] = gpu_scaling[0].device
    return out


def goals(h: dict) -> list[Goal]:
    def ratio(v):
        return "not measured" if v is None else f"{v:.0%} of bare"

    def ms(v):
        return "not measured" if v is None else f"{v:.1f} ms"

    million = h["ranker_top20_ms"].get("1000000")
    return [
        Goal("cache hit: throughput", f">= {HIT_RATIO_GOAL:.0%} of the bare endpoint (1 worker each)", ratio(h["hit_ratio"]),
             None if h["hit_ratio"] is None else h["hit_ratio"] >= HIT_RATIO_GOAL),
        Goal("cache hit: p99 at 32 connections", f"<= {HIT_P99_GOAL_MS:.0f} ms", ms(h["hit_p99_ms_32"]),
             None if h["hit_p99_ms_32"] is None else h["hit_p99_ms_32"] <= HIT_P99_GOAL_MS),
        Goal("cache miss: throughput", f">= {MISS_RATIO_GOAL:.0%} of the bare endpoint (1 worker each)", ratio(h["miss_ratio"]),
             None if h["miss_ratio"] is None else h["miss_ratio"] >= MISS_RATIO_GOAL),
        Goal("cache miss: p99 at 32 connections", f"<= {MISS_P99_GOAL_MS:.0f} ms (the original design: 500 ms)", ms(h["miss_p99_ms_32"]),
             None if h["miss_p99_ms_32"] is None else h["miss_p99_ms_32"] <= MISS_P99_GOAL_MS),
        Goal("ranker: top-20 over 10^6 items, CPU", f"< {RANKER_GOAL_MS:.0f} ms (p50, with filters)", ms(million),
             None if million is None else million < RANKER_GOAL_MS),
    ]


def verdict(g: Goal) -> str:
    return "not measured" if g.passed is None else ("PASS" if g.passed else "FAIL")


def plot(result: ServingBenchResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = [t for t in TARGET_LABELS if any(r.target == t for r in result.runs)]
    fig, (ax_lat, ax_rps) = plt.subplots(1, 2, figsize=(12, 4.5))
    for t in targets:
        runs = sorted((r for r in result.runs if r.target == t), key=lambda r: r.connections)
        x = [r.connections for r in runs]
        line, = ax_lat.plot(x, [r.p99_ms for r in runs], marker="o", label=f"{TARGET_LABELS[t]} p99")
        ax_lat.plot(x, [r.p50_ms for r in runs], marker=".", linestyle="--", color=line.get_color(), alpha=0.7)
        ax_rps.plot(x, [r.rps for r in runs], marker="o", color=line.get_color(), label=TARGET_LABELS[t])
    for ax in (ax_lat, ax_rps):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent connections (wrk)")
        ax.grid(True, which="both", alpha=0.3)
    ax_lat.set_yscale("log")
    ax_lat.set_ylabel("latency, ms (solid p99, dashed p50)")
    ax_lat.axhline(MISS_P99_GOAL_MS, color="grey", linestyle=":", linewidth=1)
    ax_lat.axhline(HIT_P99_GOAL_MS, color="grey", linestyle=":", linewidth=1)
    ax_rps.set_ylabel("requests per second")
    ax_lat.legend(fontsize=7)
    ax_rps.legend(fontsize=7)
    fig.suptitle("POST /v1/recommendations: latency and throughput versus load (one run, same machine)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _scaling_table(rows: list[ScalingResult]) -> list[str]:
    lines = ["| items | device | plain top-20 p50 (ms) | filter mask p50 (ms) | mask, new filters p50 (ms) | filtered top-20 p50 (ms) | p95 (ms) | mean (ms) "
             "| lists same as fp32 | fp32 top-20 kept |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        cold = f"{r.mask_cold_ms_p50:.2f}" if r.mask_cold_ms_p50 else "-"
        lines.append(f"| {r.items:,} | {r.device} | {r.plain_ms_p50:.2f} | {r.mask_ms_p50:.2f} | {cold} | {r.filtered_ms_p50:.2f} | "
                     f"{r.filtered_ms_p95:.2f} | {r.filtered_ms_mean:.2f} | {r.same_as_fp32:.1%} | {r.fp32_overlap:.2%} |")
    return lines


def render_markdown(result: ServingBenchResult, h: dict, cpu_scaling: list[ScalingResult], gpu_scaling: list[ScalingResult] | None,
                    figure: Path, command: str, cpu_threads: int, gpu_served: dict | None = None) -> str:
    cfg = result.config
    c = cfg["headline_connections"]
    out = [
        "# Serving performance",
        "",
        f"Generated by `{command}` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC. Every figure below comes from that one run, "
        f"on one machine ({result.machine.get('cpu_model', 'CPU model not recorded')}, {result.machine.get('cpus')} CPU cores, "
        f"load average {result.machine.get('load_avg_at_start')} at the start; "
        "a busy machine lowers every absolute figure, which is why the goals are ratios to a bare endpoint measured in the same run).",
        "",
        f"- Stack: {', '.join(result.services)} (launcher's Python API, one uvicorn process per service as `movierec up` starts them); "
        f"model `{result.model_version}`, policy `{result.policy_version}`, {result.catalog_items or '?'} movies served"
        + (f"; before measuring, {result.cleared_from_earlier_runs['cached_lists']} cached lists and "
           f"{result.cleared_from_earlier_runs['queued_tasks']} queued tasks left by earlier runs were removed from its Redis."
           if result.cleared_from_earlier_runs else "."),
        f"- Load: `wrk` with a Lua script making the POST bodies, {cfg['wrk_threads']} threads, {cfg['duration_s']:g} s per level after a "
        f"{cfg['warmup_s']:g} s warm-up, levels {', '.join(map(str, cfg['levels']))} connections; k = {cfg['k']}.",
        f"- Cache hit: {cfg['hit_users']} known users whose lists were cached just before. Cache miss: every request a known user "
        "(all users in turn) with one never-seen movie id excluded, so each request has a new cache key and does the full work "
        "of a miss (feedback history, ranker top-N, policy when running, explanations, cache write). A user's feedback history "
        "is kept with their lists (`recs:{user}:history`), so only each user's first miss in a run asks the feedback service.",
        "",
        "## Goals",
        "",
        "| goal | target | measured | |",
        "|---|---|---|---|",
    ]
    for g in goals(h):
        out.append(f"| {g.name} | {g.target} | {g.measured} | **{verdict(g)}** |")
    out += ["", f"Headline figures (also in `reports/performance.json`) are at {c} connections; the gateway runs one uvicorn "
            "worker, so the ratios divide by the bare endpoint with one worker.", "",
            "## Throughput and latency", "",
            "| path | connections | req/s | p50 ms | p95 ms | p99 ms | errors | wrk CPU share | server CPU share | ratio to bare (1 worker) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for t in TARGET_LABELS:
        for r in sorted((r for r in result.runs if r.target == t), key=lambda r: r.connections):
            bare = result.run("bare-1w", r.connections)
            ratio = f"{r.rps / bare.rps:.2f}" if bare and bare.rps else ""
            out.append(f"| {TARGET_LABELS[t]} | {r.connections} | {r.rps:.1f} | {r.p50_ms:.1f} | {r.p95_ms:.1f} | {r.p99_ms:.1f} | "
                       f"{r.errors} | {r.wrk_cpu_share:.1%} | {result.server_cpu_share.get(f'{t}@{r.connections}', 0):.1%} | {ratio} |")
    out += ["", "CPU shares are of the whole machine (CPU seconds / (wall seconds x cores)): the load generator's stays small, "
            "so it is not what limits the figures.", "",
            f"![latency and throughput versus load]({figure.relative_to(figure.parent.parent).as_posix()})", "",
            "## Ranker top-N as the catalog grows", "",
            f"The real ranker code (`movierec.serving`: the filter mask from `FilterColumns`, built once per model version as the "
            f"ranker keeps them, its genre/year/rating part kept per filter combination, then `ItemIndex.top_n`) on synthetic catalogs of {cpu_scaling[0].dim}-dimensional vectors (the served model's width), {cpu_threads} CPU threads. `filtered` is one request as the ranker serves it (genres, year, minimum rating and "
            "300 watched movies excluded; the filters seen before, as most requests' are); `mask, new filters` is the mask for filters "
            "not seen before (add it to `filtered` for such a request); `plain` is the scan and top-k alone, without filters. On the CPU "
            "a catalog of 10^5 items or more is scanned first in int8 and its best k + 1,024 rescored in fp32 "
            "(`movierec.serving.int8_scan`, finding 21); the last two columns compare each filtered list with the fp32 scan's "
            "(computed untimed): the share of identical lists and the share of the fp32 top-20 they hold. The synthetic vectors "
            "are clustered with unequal norms, like the served model's.", ""]
    out += _scaling_table(cpu_scaling)
    if gpu_scaling:
        out += ["", f"On the GPU ({gpu_scaling[0].device}, `movierec bench ranker --device cuda --served` on a lent machine):", ""]
        out += _scaling_table(gpu_scaling)
        if gpu_served:
            g = gpu_served
            out += ["", f"The served model `{g['model_version']}` ({g['items']:,} movies) on the GPU, the whole `Ranker.top_n` "
                        f"(k={g['k']}, {g['requests']} requests x seeds {g['seeds']}): p50 {g['p50_ms_mean']:.2f} +- {g['p50_ms_std']:.2f} ms, "
                        f"p95 {g['p95_ms_mean']:.2f} +- {g['p95_ms_std']:.2f} ms; the same lists as on the CPU for "
                        f"{g['same_lists_as_cpu']:.0%} of requests."]
    else:
        out += ["", "No GPU record in `reports/measurements/`: on a machine with a GPU, `movierec bench ranker --device cuda --served` "
                "saves one there and the next `movierec bench serving` includes it."]
    if result.gateway_counters:
        out += ["", "## How the gateway answered during each path's runs (its Prometheus counters)", "",
                "A cache error (Redis slower than the gateway's Redis timeout) is served as a miss, so a hit run that shows "
                "errors measured part of the miss path.", "", "| path | counter | count |", "|---|---|---:|"]
        for target, counters in result.gateway_counters.items():
            for key, value in sorted(counters.items()):
                out.append(f"| {TARGET_LABELS.get(target, target)} | `{key}` | {value:.0f} |")
    out += ["", "## Memory (resident set size after the runs)", "", "| process | RSS MiB |", "|---|---:|"]
    out += [f"| {name} | {mb:.0f} |" for name, mb in result.memory_mb.items()]
    out += ["", f"## Where the time goes (py-spy on each service, {c} connections)", ""]
    if result.profiles:
        out += ["Share of each service's busy samples by the innermost recognised frame; idle is a parked thread or the event loop "
                "waiting for I/O (share of all samples).", "",
                "| service (path) | samples | idle | busy time by kind | our hottest functions (share of busy samples) |",
                "|---|---:|---:|---|---|"]
        for p in result.profiles:
            kinds = ", ".join(f"{k} {v:.0%}" for k, v in p.busy_shares.items() if v >= 0.01)
            hot = ", ".join(f"`{k}` {v:.0%}" for k, v in p.hot_spots.items() if v >= 0.01)
            out.append(f"| {p.service} | {p.samples} | {p.idle_share:.0%} | {kinds} | {hot} |")
    else:
        out.append("No profile in this run (py-spy missing or not permitted to attach).")
    return "\n".join(out) + "\n"


def _halves(bins: list[dict]) -> tuple[tuple[float, int], tuple[float, int]]:
    """(CTR, lists) of the first and the second half of the bins."""
    half = len(bins) // 2

    def ctr(part):
        lists = sum(b["lists"] for b in part)
        return sum(b["ctr"] * b["lists"] for b in part) / max(1, lists), lists
    return ctr(bins[:half]), ctr(bins[half:])


def _rise(bins: list[dict]) -> tuple[float, float, float, float]:
    """CTR in the first and second half, the rise and its 95% half-width (two proportions,
    normal approximation; lists of one person are not independent, so it is a lower bound)."""
    (p1, n1), (p2, n2) = _halves(bins)
    half_width = 1.96 * math.sqrt(p1 * (1 - p1) / max(1, n1) + p2 * (1 - p2) / max(1, n2))
    return p1, p2, p2 - p1, half_width


def closed_loop_section(pairs: list[tuple[dict, dict | None]], figure: Path) -> list[str]:
    """The closed-loop runs, one learning run and its control per seed (``records.closed_loop_pairs``):
    what learning added over the control across seeds, then each seed's run."""
    first = pairs[0][0]
    out = ["", "## Closed loop (feedback -> Celery retraining -> new policy versions)", "",
           f"`movierec bench closed-loop --minutes {first['minutes']:g} --users {first['users']} --seed S`, each seed first with "
           "`--no-retrain` (the control: no Celery worker, the starting policy stays) and then with retraining, both from the same "
           "policy version; each run first removes the cached lists and queued Celery tasks that earlier runs left in its Redis. "
           "CTR is the share of lists (known users, no filters) in which the simulated user clicked a movie; "
           "watch minutes are per list shown."]
    out += _replications(pairs)
    for data, control in pairs:
        out += ["", f"### Seed {data['seed']}", ""] + _closed_loop_run(data, control)
    if figure.exists():
        out += ["", f"![closed loop]({figure.relative_to(figure.parent.parent).as_posix()})"]
    return out


def _published(data: dict) -> int:
    """New policy versions a learning run published (from its checks; from the versions served when it kept none)."""
    if data.get("checks") is not None:
        return sum(c["status"] == "published" for c in data["checks"])
    return max(0, len({v for b in data["bins"] for v in b["policy_versions"]}) - 1)


def _replications(pairs: list[tuple[dict, dict | None]]) -> list[str]:
    """Per seed, the rise from the first half to the second with and without learning, and their
    difference over the seeds: its mean with a t interval over the seeds' differences (run-to-run
    variation included), and the pooled within-run interval (lists as independent: narrower)."""
    rows = [(d, c) for d, c in pairs if c is not None and len(d["bins"]) >= 4 and len(c["bins"]) >= 4]
    if not rows:
        return []
    out = ["", "| seed | started from | versions published | learning: CTR first half -> second | control: CTR first half -> second | "
               "rise that learning adds (95%, lists as independent) |", "|---:|---|---:|---|---|---|"]
    diffs, half_widths, starts = [], [], []
    for d, c in rows:
        l1, l2, rise, hw = _rise(d["bins"])
        c1, c2, c_rise, c_hw = _rise(c["bins"])
        start = d.get("start_version") if d.get("start_version") == c.get("start_version") else \
            f"{d.get('start_version')} (control: {c.get('start_version')})"
        diffs.append(rise - c_rise)
        half_widths.append(math.hypot(hw, c_hw))
        starts.append(d.get("start_version"))
        out.append(f"| {d['seed']} | {start} | {_published(d)} | {l1:.3f} -> {l2:.3f} ({rise:+.3f}) | {c1:.3f} -> {c2:.3f} ({c_rise:+.3f}) | "
                   f"{diffs[-1]:+.3f} +- {half_widths[-1]:.3f} |")
    n, mean = len(diffs), sum(diffs) / len(diffs)
    pooled = math.sqrt(sum(h * h for h in half_widths)) / n
    if n < 2:
        return out + ["", f"One seed so far: learning adds {mean:+.3f} +- {pooled:.3f} (95%, lists as independent, which understates "
                          "the run-to-run variation); more seeds (`--seed`) tell it from chance."]
    _, sd, t_hw = t_interval95(diffs)
    verdict = "above zero" if mean - t_hw > 0 else ("below zero" if mean + t_hw < 0 else "not distinguishable from zero")
    out += ["", f"Over {n} seeds, learning adds {mean:+.3f} to the rise of CTR (sd {sd:.3f} over seeds; 95% t interval "
                f"+- {t_hw:.3f}, {verdict}). Pooling the within-run intervals instead (lists as independent, no run-to-run "
                f"variation): +- {pooled:.3f}."]
    groups = {start: [x for x, s in zip(diffs, starts) if s == start] for start in dict.fromkeys(starts)}
    if len(groups) > 1:
        out += ["", "By starting policy (each was trained in its own session, and its seeds ran with the code of that session, "
                    "so each is a series of its own):", "",
                "| started from | seeds | learning adds (mean) | sd over seeds | 95% t interval |", "|---|---:|---:|---:|---:|"]
        for start, xs in groups.items():
            g_mean, g_sd, g_hw = t_interval95(xs)
            out.append(f"| {start} | {len(xs)} | {g_mean:+.3f} | " + (f"{g_sd:.3f} | +- {g_hw:.3f} |" if len(xs) > 1 else "– | – |"))
    return out


def fine_tune_study_section(records: list[dict]) -> list[str]:
    """The saved ``movierec rl fine-tune-study`` runs: per seed and candidate, its on-policy CTR
    gain in the simulator next to what the off-policy check (and the capped views) made of it."""
    if not records:
        return []
    out = ["", "### What the check sees of fine-tuned candidates (`movierec rl fine-tune-study`)", "",
           "The served policy logs simulated sessions of 200 users; online retraining fine-tunes a candidate on that log for "
           "each length and values it off-policy on its held-out users, as a check does (SNIPS gain over the served policy, "
           "ESS of the candidate's weights, the first check's lower bound; a check publishes when the bound is above 0). "
           "Each candidate and the served policy then serve the same sessions to 200 other users: the true CTR gain "
           "(95%, paired over users). `untrained` is a negative control (a Q-network never trained), which a check must "
           "refuse. Capped views value the same units with importance weights capped (clipped importance sampling). "
           "Serving: epsilon-greedy (epsilon 0.05: the best movie, or 5% of the time a uniform one), or with a temperature T the "
           "rest of the time a softmax of Q / T instead of the best (`movierec.rl.slate`); the served policy's on-policy CTR "
           "shows what that exploration costs.", "",
           "| serving | seeds | served CTR (mean) | fine-tuned candidates the check publishes | their true CTR gains | "
           "ESS of the fine-tuned | negative controls refused |", "|---|---:|---:|---:|---|---|---:|"]
    groups: dict[str, list[dict]] = {}
    for record in records:
        groups.setdefault(_serving(record), []).append(record)
    for serving, group in groups.items():
        tuned = [row for record in group for row in record["rows"] if row["label"] != "untrained"]
        controls = [row for record in group for row in record["rows"] if row["label"] == "untrained"]
        published = [row["ctr_gain"] for row in tuned if row["views"][0]["gain_lower_bound"] > 0]
        ess = [row["views"][0]["candidate_ess"] for row in tuned]
        gains = f"{min(published):+.3f} to {max(published):+.3f}" if published else "–"
        out.append(f"| {serving} | {', '.join(str(r['seed']) for r in group)} | "
                   f"{sum(r['rows'][0]['served']['ctr'] for r in group) / len(group):.3f} | {len(published)} of {len(tuned)} | {gains} | "
                   f"{min(ess):.0f}-{max(ess):.0f} | {sum(row['views'][0]['gain_lower_bound'] <= 0 for row in controls)} of {len(controls)} |")
    out += ["", "| serving | seed | served CTR | candidate | true CTR gain | weights | SNIPS gain | ESS | bound | publishes |",
            "|---|---:|---:|---|---|---|---:|---:|---:|---|"]
    for record in records:
        serving = _serving(record)
        for row in record["rows"]:
            first = True
            for v in row["views"]:
                head = (f"| {serving} | {record['seed']} | {row['served']['ctr']:.3f} | {row['label']} | "
                        f"{row['ctr_gain']:+.3f} +- {row['ctr_gain_half_width']:.3f} |" if first else "| | | | | |")
                weights = "as logged (the check)" if v["cap"] is None else f"capped at {v['cap']:g}"
                out.append(f"{head} {weights} | {v['gain']:+.3f} | {v['candidate_ess']:.1f} of {row['units']} | "
                           f"{v['gain_lower_bound']:+.3f} | {'yes' if v['gain_lower_bound'] > 0 else 'no'} |")
                first = False
    return out


def _serving(record: dict) -> str:
    """A study record's serving exploration, e.g. ``eps 0.05, T 1``."""
    temperature = record.get("serving_temperature", 0.0)
    return f"eps {record.get('serving_epsilon', 0.05):g}" + (f", T {temperature:g}" if temperature else "")


def _closed_loop_run(data: dict, control: dict | None) -> list[str]:
    out = [f"{data['requests']} requests, {data['failures']} failed."
           + (f" The gateway logged {data['logged_decisions']:,} policy decisions (lists chosen for known users, filtered ones "
              "included) in the run's own decision log." if data.get("logged_decisions") is not None else ""), "",
           "| minute | lists | CTR | watch min / list | mean rating | policy versions |", "|---:|---:|---:|---:|---:|---|"]
    for b in data["bins"]:
        rating = "" if b["mean_rating"] is None else f"{b['mean_rating']:.2f}"
        out.append(f"| {b['start_s'] / 60:.1f} | {b['lists']} | {b['ctr']:.3f} | {b['watch_minutes_per_list']:.1f} | {rating} | "
                   f"{', '.join(b['policy_versions'])} |")
    bins = data["bins"]
    if len(bins) >= 4:
        first, second, rise, hw = _rise(bins)
        versions = {v for b in bins for v in b["policy_versions"]}
        trend = "rose" if rise - hw > 0 else ("fell" if rise + hw < 0 else "did not change beyond chance")
        out += ["", f"CTR {trend}: {first:.3f} in the first half, {second:.3f} in the second ({rise:+.3f} +- {hw:.3f}, 95%); "
                    f"{len(versions)} policy version(s) served."]
        if len(versions) <= 1:
            out.append("No new policy version was published during the run: retraining publishes a candidate only when held-out users' "
                       "logged slates show an off-policy gain (a lower bound above zero, at a confidence that grows with each check of "
                       "the served version), and this run's feedback never did, so no "
                       "rise can come from learning in this run.")
        if control is not None and len(control["bins"]) >= 4:
            c_first, c_second, c_rise, c_hw = _rise(control["bins"])
            same_start = control.get("start_version") == data.get("start_version")
            out += ["", f"Control run without retraining (`--no-retrain`, same users, seed and length; started from policy "
                        f"{control.get('start_version')}{'' if same_start else ', not the version the retraining run started from'}): "
                        f"CTR {c_first:.3f} then {c_second:.3f} ({c_rise:+.3f} +- {c_hw:.3f}). The rise that learning adds over the "
                        f"control: {rise - c_rise:+.3f} +- {math.hypot(hw, c_hw):.3f} (95%, one run each)."]
            if len(versions) <= 1 and same_start:
                out.append("Both runs served the same policy throughout, so the gap between them is the run-to-run variation of "
                           "the simulated sessions (the intervals above treat lists as independent and understate it), and a "
                           "change of CTR within a run that the control shows too comes from the simulated people, not from a "
                           "policy change.")
        elif control is None:
            out += ["", "No control run (`--no-retrain`) was saved, so a rise cannot be told from what the simulated sessions "
                        "would show without learning."]
    out += _checks_table(data.get("checks"))
    return out


def _checks_table(checks: list[dict] | None) -> list[str]:
    """The retraining run's checks as the worker logged them (a record made before they were kept has none)."""
    if checks is None:
        return []
    if not checks:
        return ["", "The worker valued no candidate during the run (too few usable slates or held-out users at every round)."]
    out = ["", "Every check the worker made during the run (its log): the candidate and the served policy valued by SNIPS on "
               "held-out users' slates, the lower bound of the gain that decided it, and the propensity gap (0: the check saw "
               "the served decisions as they were made; slates from the decision log / all usable slates; served by it: "
               "the usable slates the served version chose itself, the rest being an earlier version's; candidate ESS: the "
               "effective sample size of the candidate's weights over the held-out units, how many of them its SNIPS rests on).", "",
           "| check | status | slates (logged decisions) | served by it | candidate SNIPS | served SNIPS | gain lower bound | propensity gap "
           "| candidate ESS / units |",
           "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    number = lambda v, f: "-" if v is None else format(v, f)  # noqa: E731
    for i, c in enumerate(checks, 1):
        out.append(f"| {i} | {c['status']} | {c['slates']} ({c.get('decisions') or 0}) | {number(c.get('current_slates'), 'd')} | "
                   f"{number(c['candidate_snips'], '.4f')} | "
                   f"{number(c['current_snips'], '.4f')} | {number(c.get('gain_lower_bound'), '+.4f')} | "
                   f"{number(c['current_propensity_gap'], '.3f')} | {number(c.get('candidate_ess'), '.1f')} / {number(c.get('units'), 'd')} |")
    return out


def write_report(result: ServingBenchResult, cpu_scaling: list[ScalingResult], gpu_scaling: list[ScalingResult] | None,
                 reports_dir: Path, command: str, cpu_threads: int, notes: str = "",
                 closed_loop: list[tuple[dict, dict | None]] | None = None, gpu_served: dict | None = None,
                 fine_tune_studies: list[dict] | None = None) -> dict:
    h = headline(result, cpu_scaling, gpu_scaling)
    figure = reports_dir / "figures" / "performance_latency.png"
    plot(result, figure)
    md = render_markdown(result, h, cpu_scaling, gpu_scaling, figure, command, cpu_threads, gpu_served)
    if closed_loop:
        md += "\n".join(closed_loop_section(closed_loop, reports_dir / "figures" / "performance_closed_loop.png")) + "\n"
    if fine_tune_studies:
        md += "\n".join(fine_tune_study_section(fine_tune_studies)) + "\n"
    md += DEVELOPMENT_FINDINGS
    if notes:
        md += "\n" + notes.strip() + "\n"
    reports_dir.mkdir(parents=True, exist_ok=True)
    (reports_dir / "performance.md").write_text(md)
    (reports_dir / "performance.json").write_text(json.dumps(h, indent=2) + "\n")
    return h
