package codec

// This file is the protocol's knowledge of what a server answers with ERROR: the codes, the
// texts gearmand sends (or a clear one where gearmand only closes the connection), and the
// argument limits checked before a packet reaches the engine.

// Reply is an ERROR packet a request is answered with: Code is the libgearman return-code
// name without its GEARMAN_ prefix, Text the message. Replies are package values, so that
// answering costs no allocation.
type Reply struct {
	Code string
	Text string
}

// AppendReply appends ERROR r.Code\0r.Text.
func AppendReply(dst []byte, r *Reply) []byte { return AppendError(dst, r.Code, r.Text) }

// Error codes.
const (
	CodeArgumentTooLarge = "ARGUMENT_TOO_LARGE"
	CodeInvalidArgument  = "INVALID_ARGUMENT"
	CodeInvalidCommand   = "INVALID_COMMAND"
	CodeInvalidMagic     = "INVALID_MAGIC"
	CodeInvalidPacket    = "INVALID_PACKET"
	CodeJobNotFound      = "JOB_NOT_FOUND"
	CodePermissionDenied = "PERMISSION_DENIED" // Spur's: the server's access rules refuse the request
	CodeQueueError       = "QUEUE_ERROR"
	CodeUnknownOption    = "UNKNOWN_OPTION"
)

// Replies with gearmand's texts.
var (
	ReplyInvalidMagic      = &Reply{CodeInvalidMagic, "Request magic expected"}
	ReplyInvalidCommand    = &Reply{CodeInvalidCommand, "Command not expected"}
	ReplyUniqueTooLarge    = &Reply{CodeArgumentTooLarge, "Unique value too large"}
	ReplyQueueFull         = &Reply{CodeQueueError, "Job queue is full"}
	ReplyUnknownOption     = &Reply{CodeUnknownOption, "Server does not recognize given option"}
	ReplyJobNotFound       = &Reply{CodeJobNotFound, "Job does not exist on server"}
	ReplyWorkNotFound      = &Reply{CodeJobNotFound, "Job given in work result not found"}
	ReplyExceptionNotFound = &Reply{CodeJobNotFound, "An exception was received for a job that does not exist"}
)

// Replies where gearmand has no text of its own (it closes the connection, crashes, or sends a
// misleading one).
var (
	ReplyPacketTooLarge   = &Reply{CodeArgumentTooLarge, "Packet exceeds the maximum packet size"}
	ReplyReducerTooLarge  = &Reply{CodeArgumentTooLarge, "Reducer name too large"}
	ReplyFunctionTooLarge = &Reply{CodeArgumentTooLarge, "Function name too large"}
	ReplyHandleTooLarge   = &Reply{CodeArgumentTooLarge, "Job handle too large"}
	ReplyTimeoutTooLarge  = &Reply{CodeArgumentTooLarge, "Timeout value too large"}
	ReplyEpochOutOfRange  = &Reply{CodeInvalidArgument, "Epoch time out of range"}
	ReplyShuttingDown     = &Reply{CodeQueueError, "Server is shutting down"}
)

// WorkNotFound is the JOB_NOT_FOUND reply gearmand sends for a WORK_* packet of type t about a
// job the connection does not hold; its text depends on the packet.
func WorkNotFound(t Type) *Reply {
	switch t {
	case WorkData, WorkWarning:
		return ReplyJobNotFound
	case WorkException:
		return ReplyExceptionNotFound
	}
	return ReplyWorkNotFound
}

// CheckArgs returns the reply for a request whose arguments break a protocol limit, or nil
// when they are all within them. The connection stays usable after such a reply: the packet
// was framed correctly, only its contents are refused. Limits kept by truncation or by a
// reply of another kind (SET_CLIENT_ID, OPTION_REQ, GET_STATUS) are not checked here.
func CheckArgs(p *Packet) *Reply {
	switch p.Type {
	case SubmitJob, SubmitJobHigh, SubmitJobLow, SubmitJobBg, SubmitJobHighBg, SubmitJobLowBg,
		SubmitJobEpoch, SubmitJobSched:
		return CheckSubmit(p.Args[0], p.Args[1], nil)
	case SubmitReduceJob, SubmitReduceJobBackground:
		return CheckSubmit(p.Args[0], p.Args[1], p.Args[2])
	case CanDo, CantDo:
		if len(p.Args[0]) > MaxFunctionSize {
			return ReplyFunctionTooLarge
		}
	case CanDoTimeout:
		if len(p.Args[0]) > MaxFunctionSize {
			return ReplyFunctionTooLarge
		}
		if len(p.Args[1]) > MaxTimeoutSize {
			return ReplyTimeoutTooLarge
		}
	case WorkStatus, WorkData, WorkWarning, WorkComplete, WorkFail, WorkException:
		if len(p.Args[0]) > MaxHandleSize {
			return ReplyHandleTooLarge
		}
	case GetStatusUnique:
		if len(p.Args[0]) > MaxUniqueSize {
			return ReplyUniqueTooLarge
		}
	}
	return nil
}

// CheckSubmit is CheckArgs for the arguments of a submit, whatever door it came through.
func CheckSubmit(fn, unique, reducer []byte) *Reply {
	switch {
	case len(fn) > MaxFunctionSize:
		return ReplyFunctionTooLarge
	case len(unique) > MaxUniqueSize:
		return ReplyUniqueTooLarge
	case len(reducer) > MaxUniqueSize:
		return ReplyReducerTooLarge
	}
	return nil
}
