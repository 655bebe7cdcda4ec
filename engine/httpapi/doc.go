// Package httpapi is Spur's HTTP door: the JSON API under /api/ and gearmand's HTTP submit
// interface (GearmanHandler). It uses only the engine's exported operations and runs on
// net/http's goroutines, never on an event loop. The contract the dashboard and the CLI code
// against is served as an OpenAPI 3.1 document at /api/openapi.json (openapi.json beside
// this file; a test keeps it and the routes in step).
//
// # Routes
//
//	GET    /api/me                          who the request is, and which actions it may take
//	GET    /api/status                      server, totals, every function's FunctionStatus
//	GET    /api/functions/{fn}              one FunctionStatus
//	GET    /api/functions/{fn}/jobs         its live jobs (?limit=N, default 1000)
//	POST   /api/functions/{fn}/pause        pause FN
//	POST   /api/functions/{fn}/resume       resume FN
//	PUT    /api/functions/{fn}/limit        limit FN N            {"limit": N}
//	PUT    /api/functions/{fn}/retry        retry FN A BASE MAX   {"attempts","base","max"} | {"off": true}
//	POST   /api/jobs                        submit: background 201 {"handle"}; foreground waits, 200 outcome
//	GET    /api/jobs?unique=U               GET_STATUS_UNIQUE (&function=FN adds its kept result)
//	GET    /api/jobs/{handle}               GET_STATUS, or the kept result once it ended
//	DELETE /api/jobs/{handle}               cancel job HANDLE
//	GET    /api/results/{handle}            show result HANDLE
//	GET    /api/results?function=FN&unique=U  show result unique FN U
//	GET    /api/scheduled                   show scheduled
//	GET    /api/schedules                   show schedules
//	POST   /api/schedules                   schedule add          {"function","spec","tz","unique","priority","data"}
//	POST   /api/schedules/{handle}/pause    schedule pause|resume|run HANDLE
//	POST   /api/schedules/{handle}/resume
//	POST   /api/schedules/{handle}/run
//	DELETE /api/schedules/{handle}          schedule delete HANDLE
//	GET    /api/dead?function=FN            show dead [FN]
//	POST   /api/dead/{handle}/retry         retry dead HANDLE
//	POST   /api/dead/retry                  retry dead all FN     {"function": FN}
//	DELETE /api/dead?function=FN            purge dead FN
//	GET    /api/workers                     workers, with what each runs and since when
//	POST   /api/workers/{id}/drain          drain worker ID
//	GET    /api/cluster/status              this node and its peers (--peer) side by side and summed:
//	                                        each node's totals and functions (as status;
//	                                        ?functions=false: the totals only)
//	GET    /api/cluster/workers             ... each node's workers (as workers)
//	GET    /api/cluster/jobs?function=FN    ... FN's counts and first jobs on each (as show; &limit=N,
//	                                        default 1000, per node); see cluster.go
//	GET    /api/openapi.json                the OpenAPI document
//
// # Who asks, and what they may do
//
// A request is the identity of its connection, as on the Gearman port: its address (and
// whether it is loopback), and over TLS the verified names of its client certificate. An
// `Authorization: Bearer SECRET` header adds the name of the token whose secret it is (the
// tokens are defined in the ACL file, see engine/acl); a secret no token has is refused
// with 401 UNAUTHORIZED, never served as anonymous. Every action then passes the engine's
// authorizer with the Action and name of the Gearman request or admin command it matches
// (the right column above): a submit is ActSubmit on the function, a listing the admin
// word ("status", "show", "workers") with the functions the identity may not read
// (ActStatus) left out, a change its admin word ("pause", "retry", "drain", ...). Without
// an ACL file gearmand's rules apply: the admin words that change state are taken only
// from loopback.
//
// # Errors
//
// Any answer but 2xx is {"error": {"code": CODE, "message": text}}, CODE one of
//
//	BAD_REQUEST 400  UNAUTHORIZED 401  PERMISSION_DENIED 403  NOT_FOUND 404
//	METHOD_NOT_ALLOWED 405  CONFLICT 409  TOO_LARGE 413  INTERNAL 500
//	QUEUE_FULL 503  SHUTTING_DOWN 503  QUEUE_ERROR 503  TIMEOUT 504 (with "handle")
//
// # Data
//
// Job data is "data" when it is valid UTF-8, else "data_base64"; requests may give either.
// Times are RFC 3339 with milliseconds in UTC, null when unknown; durations seconds.
package httpapi
