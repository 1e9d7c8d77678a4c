package arqon

// Error codes, as listed in docs/errors.md (server codes, command codes, CASIL codes and the client-side codes the SDKs
// raise themselves). Match on these, never on messages. The Go SDK raises ARQ_CONNECTION_CLOSED, ARQ_REQUEST_TIMEOUT,
// ARQ_CLIENT_CLOSED and ARQ_DELTA_INVALID itself, and VerifyWebhook the ARQ_WEBHOOK_* codes but
// ARQ_WEBHOOK_CRYPTO_UNAVAILABLE (the TS SDK's, for browsers without Web Crypto), listed for completeness.
const (
	CodeFrameMalformed            = "ARQ_FRAME_MALFORMED"
	CodeFrameUnknownType          = "ARQ_FRAME_UNKNOWN_TYPE"
	CodeFrameMissingField         = "ARQ_FRAME_MISSING_FIELD"
	CodeFrameWrongType            = "ARQ_FRAME_WRONG_TYPE"
	CodeFrameTooLarge             = "ARQ_FRAME_TOO_LARGE"
	CodeFrameTooDeep              = "ARQ_FRAME_TOO_DEEP"
	CodeFrameUnexpected           = "ARQ_FRAME_UNEXPECTED"
	CodeRoomInvalid               = "ARQ_ROOM_INVALID"
	CodeTenantInvalid             = "ARQ_TENANT_INVALID"
	CodeHeaderInvalid             = "ARQ_HEADER_INVALID"
	CodePayloadTooLarge           = "ARQ_PAYLOAD_TOO_LARGE"
	CodeProtocolUnsupported       = "ARQ_PROTOCOL_UNSUPPORTED"
	CodeAuthMissing               = "ARQ_AUTH_MISSING"
	CodeAuthInvalid               = "ARQ_AUTH_INVALID"
	CodeAuthExpired               = "ARQ_AUTH_EXPIRED"
	CodeAuthRevoked               = "ARQ_AUTH_REVOKED"
	CodeAuthMismatch              = "ARQ_AUTH_MISMATCH"
	CodeForbidden                 = "ARQ_FORBIDDEN"
	CodeOriginForbidden           = "ARQ_ORIGIN_FORBIDDEN"
	CodeTenantDisabled            = "ARQ_TENANT_DISABLED"
	CodeTenantUnknown             = "ARQ_TENANT_UNKNOWN"
	CodeQuotaExceeded             = "ARQ_QUOTA_EXCEEDED"
	CodeConfirmationRequired      = "ARQ_CONFIRMATION_REQUIRED"
	CodeOutboundForbidden         = "ARQ_OUTBOUND_FORBIDDEN"
	CodeOutboundFailed            = "ARQ_OUTBOUND_FAILED"
	CodeProxyDenied               = "ARQ_PROXY_DENIED"
	CodeProxyUnavailable          = "ARQ_PROXY_UNAVAILABLE"
	CodeFeatureDisabled           = "ARQ_FEATURE_DISABLED"
	CodeRateLimited               = "ARQ_RATE_LIMITED"
	CodeTooManyConnections        = "ARQ_TOO_MANY_CONNECTIONS"
	CodeTooManySubscriptions      = "ARQ_TOO_MANY_SUBSCRIPTIONS"
	CodePresenceInfoTooLarge      = "ARQ_PRESENCE_INFO_TOO_LARGE"
	CodeNotSubscribed             = "ARQ_NOT_SUBSCRIBED"
	CodeStateConflict             = "ARQ_STATE_CONFLICT"
	CodeStateKeyInvalid           = "ARQ_STATE_KEY_INVALID"
	CodeHistoryUnavailable        = "ARQ_HISTORY_UNAVAILABLE"
	CodeHistoryGap                = "ARQ_HISTORY_GAP"
	CodePresenceDisabled          = "ARQ_PRESENCE_DISABLED"
	CodePositionInvalid           = "ARQ_POSITION_INVALID"
	CodeBackendUnavailable        = "ARQ_BACKEND_UNAVAILABLE"
	CodeShuttingDown              = "ARQ_SHUTTING_DOWN"
	CodeSessionUnknown            = "ARQ_SESSION_UNKNOWN"
	CodeInternal                  = "ARQ_INTERNAL"
	CodeCommandAuthorizationError = "AUTHORIZATION_ERROR"
	CodeCommandValidationError    = "VALIDATION_ERROR"
	CodeCommandNotFound           = "NOT_FOUND"
	CodeCommandFeatureDisabled    = "FEATURE_DISABLED"
	CodeCommandConflict           = "CONFLICT"
	CodeCommandInternalError      = "INTERNAL_ERROR"
	CodeCasilPolicyOversize       = "CASIL_POLICY_OVERSIZE"
	CodeCasilPolicyBlockedSecret  = "CASIL_POLICY_BLOCKED_SECRET"
	CodeCasilPolicyBlockedPattern = "CASIL_POLICY_BLOCKED_PATTERN"
	CodeCasilPolicyRedacted       = "CASIL_POLICY_REDACTED"
	CodeCasilPolicySchema         = "CASIL_POLICY_SCHEMA"
	CodeCasilPolicyDefaultBlock   = "CASIL_POLICY_DEFAULT_BLOCK"
	CodeCasilWasmDeny             = "CASIL_WASM_DENY"
	CodeCasilInternalError        = "CASIL_INTERNAL_ERROR"
	CodeConnectionClosed          = "ARQ_CONNECTION_CLOSED"
	CodeRequestTimeout            = "ARQ_REQUEST_TIMEOUT"
	CodeClientClosed              = "ARQ_CLIENT_CLOSED"
	CodeCodecUnavailable          = "ARQ_CODEC_UNAVAILABLE"
	CodeWebsocketUnavailable      = "ARQ_WEBSOCKET_UNAVAILABLE"
	CodeDeltaInvalid              = "ARQ_DELTA_INVALID"
	CodeWebhookHeaderMissing      = "ARQ_WEBHOOK_HEADER_MISSING"
	CodeWebhookSignatureMalformed = "ARQ_WEBHOOK_SIGNATURE_MALFORMED"
	CodeWebhookTimestampInvalid   = "ARQ_WEBHOOK_TIMESTAMP_INVALID"
	CodeWebhookTimestampTooOld    = "ARQ_WEBHOOK_TIMESTAMP_TOO_OLD"
	CodeWebhookTimestampTooNew    = "ARQ_WEBHOOK_TIMESTAMP_TOO_NEW"
	CodeWebhookSignatureMismatch  = "ARQ_WEBHOOK_SIGNATURE_MISMATCH"
	CodeWebhookSecretInvalid      = "ARQ_WEBHOOK_SECRET_INVALID"
	CodeWebhookCryptoUnavailable  = "ARQ_WEBHOOK_CRYPTO_UNAVAILABLE"
)

// AllCodes lists every code of docs/errors.md once, in its order (a test compares the two).
var AllCodes = []string{
	CodeFrameMalformed,
	CodeFrameUnknownType,
	CodeFrameMissingField,
	CodeFrameWrongType,
	CodeFrameTooLarge,
	CodeFrameTooDeep,
	CodeFrameUnexpected,
	CodeRoomInvalid,
	CodeTenantInvalid,
	CodeHeaderInvalid,
	CodePayloadTooLarge,
	CodeProtocolUnsupported,
	CodeAuthMissing,
	CodeAuthInvalid,
	CodeAuthExpired,
	CodeAuthRevoked,
	CodeAuthMismatch,
	CodeForbidden,
	CodeOriginForbidden,
	CodeTenantDisabled,
	CodeTenantUnknown,
	CodeQuotaExceeded,
	CodeConfirmationRequired,
	CodeOutboundForbidden,
	CodeOutboundFailed,
	CodeProxyDenied,
	CodeProxyUnavailable,
	CodeFeatureDisabled,
	CodeRateLimited,
	CodeTooManyConnections,
	CodeTooManySubscriptions,
	CodePresenceInfoTooLarge,
	CodeNotSubscribed,
	CodeStateConflict,
	CodeStateKeyInvalid,
	CodeHistoryUnavailable,
	CodeHistoryGap,
	CodePresenceDisabled,
	CodePositionInvalid,
	CodeBackendUnavailable,
	CodeShuttingDown,
	CodeSessionUnknown,
	CodeInternal,
	CodeCommandAuthorizationError,
	CodeCommandValidationError,
	CodeCommandNotFound,
	CodeCommandFeatureDisabled,
	CodeCommandConflict,
	CodeCommandInternalError,
	CodeCasilPolicyOversize,
	CodeCasilPolicyBlockedSecret,
	CodeCasilPolicyBlockedPattern,
	CodeCasilPolicyRedacted,
	CodeCasilPolicySchema,
	CodeCasilPolicyDefaultBlock,
	CodeCasilWasmDeny,
	CodeCasilInternalError,
	CodeConnectionClosed,
	CodeRequestTimeout,
	CodeClientClosed,
	CodeCodecUnavailable,
	CodeWebsocketUnavailable,
	CodeDeltaInvalid,
	CodeWebhookHeaderMissing,
	CodeWebhookSignatureMalformed,
	CodeWebhookTimestampInvalid,
	CodeWebhookTimestampTooOld,
	CodeWebhookTimestampTooNew,
	CodeWebhookSignatureMismatch,
	CodeWebhookSecretInvalid,
	CodeWebhookCryptoUnavailable,
}
