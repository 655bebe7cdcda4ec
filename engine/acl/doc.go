// Package acl decides, from a small text file, who may do what on a Spur server: which
// functions an identity may submit to, work on and read the status and results of, and
// which admin commands it may run. It implements engine.Authorizer. Once a file is given,
// anything it does not grant is refused.
//
// # The file
//
// Lines are read one by one. '#' starts a comment when it begins a line or follows white
// space; blank lines are ignored. A section header in brackets names who the lines after
// it apply to, with one or more selectors separated by spaces; a connection matches the
// section when any one of them matches it:
//
//	cert:GLOB   a verified TLS client certificate name (CN or a DNS/URI SAN) matching GLOB
//	token:GLOB  an HTTP request whose bearer token (see Tokens below) has a name matching GLOB
//	net:CIDR    the connection's source address is in CIDR (v4 or v6; a bare address is
//	            that one host), over plaintext or TLS alike
//	loopback    the connection comes from this machine
//	any         every connection
//
// Each line of a section is an action and one or more patterns, separated by spaces:
//
//	submit  PATTERN...   queue jobs for a matching function (every SUBMIT_JOB variant)
//	work    PATTERN...   register as a worker of a matching function (CAN_DO*), and so
//	                     receive its jobs' data
//	status  PATTERN...   read the status, results and dead letters of a matching
//	                     function's jobs (GET_STATUS*, `show result`, `show dead`, ...)
//	admin   WORD...      run the text admin commands whose first word matches (`show`
//	                     covers `show jobs`, `show dead`, ...; `drop` is `drop function`)
//
// Patterns are globs over the whole name, like path.Match's except that '/' is an
// ordinary character: '*' matches any run of characters, '?' one character, "[a-z]" one
// character of a class ("[^a-z]" or "[!a-z]" one outside it), '\' quotes the character
// after it. Function names and certificate names are case-sensitive; admin words are not.
// The rules of every section an identity matches add up; nothing else is granted.
//
//	# Billing's services, identified by their client certificates.
//	[cert:billing-*]
//	submit  billing.* invoice
//	work    billing.*
//	status  billing.*
//	admin   status workers show
//
//	# The office network submits anything and reads every job's status, over plaintext.
//	[net:10.0.0.0/8 net:fd00::/8]
//	submit *
//	status *
//
//	# Operators on this machine run every admin command; gearadmin's read-only view is
//	# open to monitoring everywhere.
//	[loopback]
//	admin *
//	[any]
//	admin status workers version getpid
//
// # Tokens
//
// HTTP clients (the JSON API, the dashboard, scripts with curl) may name themselves with a
// bearer token, `Authorization: Bearer SECRET`. A token is defined by a line of its own,
// anywhere in the file (by convention at the top), that gives its name and the SHA-256 of
// its secret, in hex; the secret itself is never written down:
//
//	token NAME sha256:HEX
//
// Make a secret and its line with
//
//	SECRET=$(openssl rand -hex 32)
//	printf 'token deploy sha256:%s\n' "$(printf %s "$SECRET" | sha256sum | cut -d' ' -f1)"
//
// and grant it in a section with the selector token:NAME:
//
//	token deploy  sha256:14ed228f3e1cb13763b1d95e0a292acb7edafb03a0806023b5b6559f6006c4fb
//	token grafana sha256:833bef590292e12dddf41116edd90f50b18b762cad57fc34c7590a3bef30b82a
//
//	# the secrets of the example are "example-deploy-secret" and "example-grafana-secret"
//	[token:deploy]
//	submit  deploy.*
//	admin   pause resume drain status show workers
//	[token:grafana]
//	admin   status workers show
//	status  *
//
// A request with a token is still the connection it came on: the sections matching its
// address (net:, loopback, any) and certificate grant it too. A request presenting a
// secret no token has is refused as a whole (HTTP 401), never served as anonymous. Names
// are letters, digits, '.', '_' and '-'; a name or a secret defined twice is a mistake.
// Secrets are compared through their hashes, in constant time.
//
// A file that does not parse is refused as a whole with the line of its first mistake
// (`acl: /etc/spur/acl: line 7: unknown action "sumbit" (...)`), and Authorizer.Reload
// keeps the rules in force when that happens.
//
// # Cost
//
// Allow is called on the event loops for every request. Patterns are compiled when the
// file is read (exact names go in a map, "*" and "prefix*" and "*suffix" are one
// comparison); a check walks the sections, which are few, and allocates nothing when it
// allows. A refusal allocates its error once; the same refusal repeated (a flood) gets
// the cached error back without allocating. The engine logs refusals, at most a few lines
// a second.
package acl
