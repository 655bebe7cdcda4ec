package codec

import "strings"

// Replies of the text admin protocol, byte for byte as gearmand sends them (its mix of
// "\r\n" and "\n" included), so that gearadmin and monitoring scripts keep working. An ERR
// line is "ERR CODE text\r\n" with the text's words joined by '+'.
const (
	AdminOK               = "OK\r\n"
	AdminTooManyWords     = "ERR INVALID_ARGUMENTS Too+many+arguments+were+sent+to+this+command\r\n"
	AdminUnknownShow      = "ERR UNKNOWN_SHOW_ARGUMENTS\r\n"
	AdminUnknownError     = "ERR UNKNOWN_ERROR\r\n"
	AdminUnknownJob       = "ERR UNKNOWN_JOB\r\n"
	AdminNoSuchFunction   = "ERR function not found\r\n"
	AdminFunctionBusy     = "ERR there are still connected workers or executing clients\r\n"
	AdminFunctionHasJobs  = "ERR there are still queued jobs for this function\r\n" // Spur refuses; gearmand drops them
	adminUnknownCommand   = "ERR UNKNOWN_COMMAND Unknown+server+command"            // gearmand glues the name on
	adminIncompleteArgs   = "ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+"
	adminAccessDeniedCode = CodePermissionDenied

	// AdminCodeInvalidArguments is gearmand's code for bad arguments, for Spur's own commands.
	AdminCodeInvalidArguments = "INVALID_ARGUMENTS"
)

// AdminUnknownCommand is the reply to an admin command gearmand does not know.
func AdminUnknownCommand(cmd []byte) string { return adminUnknownCommand + string(cmd) + "\r\n" }

// AdminIncompleteArgs is the reply to a known command given too few arguments.
func AdminIncompleteArgs(cmd string) string { return adminIncompleteArgs + cmd + "\r\n" }

// AdminErr is an ERR line of Spur's own: code, then msg with its spaces as '+'.
func AdminErr(code, msg string) string {
	return "ERR " + code + " " + strings.ReplaceAll(msg, " ", "+") + "\r\n"
}

// AdminAccessDenied refuses an admin command the server's access rules do not allow.
func AdminAccessDenied(cmd, why string) string { return AdminErr(adminAccessDeniedCode, cmd+" "+why) }

// AdminValue is a one-value reply: "OK value\n" (getpid, verbose, version).
func AdminValue(v string) string { return "OK " + v + "\n" }
