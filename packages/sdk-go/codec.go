package arqon

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/arqonbus/arqonbus/packages/sdk-go/arqonpb"
)

// Codec turns frames into WebSocket messages and back. JSONCodec writes text frames (the JSON face of
// docs/protocol.md), ProtobufCodec binary frames (arqon.v1.Frame bytes). Whatever the codec of a connection, inbound
// text frames are read as JSON and binary frames as protobuf (DecodeFrame).
type Codec interface {
	// Name is "json" or "protobuf".
	Name() string
	// Encode returns the bytes of one WebSocket message and whether it is a binary message.
	Encode(f *arqonpb.Frame) (data []byte, binary bool, err error)
}

// JSONCodec is the JSON face of the protocol (text frames).
var JSONCodec Codec = jsonCodec{}

// ProtobufCodec is the protobuf face of the protocol (binary frames).
var ProtobufCodec Codec = protobufCodec{}

type jsonCodec struct{}

func (jsonCodec) Name() string { return "json" }
func (jsonCodec) Encode(f *arqonpb.Frame) ([]byte, bool, error) {
	b, err := EncodeJSON(f)
	return b, false, err
}

type protobufCodec struct{}

func (protobufCodec) Name() string { return "protobuf" }
func (protobufCodec) Encode(f *arqonpb.Frame) ([]byte, bool, error) {
	b, err := proto.Marshal(f)
	return b, true, err
}

// DecodeFrame decodes one inbound WebSocket message: binary messages as protobuf, text messages as JSON.
func DecodeFrame(data []byte, binary bool) (*arqonpb.Frame, error) {
	if binary {
		return DecodeProtobuf(data)
	}
	return DecodeJSON(data)
}

// DecodeProtobuf decodes arqon.v1.Frame bytes. Errors are *Error with ARQ_FRAME_MALFORMED, or ARQ_FRAME_UNKNOWN_TYPE
// for a frame whose type is unspecified or unknown.
func DecodeProtobuf(data []byte) (*arqonpb.Frame, error) {
	f := &arqonpb.Frame{}
	if err := proto.Unmarshal(data, f); err != nil {
		return nil, newError(CodeFrameMalformed, "not a protobuf Frame: "+err.Error())
	}
	if f.Type == arqonpb.FrameType_FRAME_TYPE_UNSPECIFIED || arqonpb.FrameType_name[int32(f.Type)] == "" {
		return f, &Error{Code: CodeFrameUnknownType, Message: fmt.Sprintf("unknown frame type %d", f.Type), RequestID: f.RequestId}
	}
	return f, nil
}

// EncodeProtobuf encodes a frame as arqon.v1.Frame bytes.
func EncodeProtobuf(f *arqonpb.Frame) ([]byte, error) { return proto.Marshal(f) }

// ---------------------------------------------------------------------------------------------------------------------
// Frame types

const typePrefix = "FRAME_TYPE_"

// FrameTypeName is the JSON face's name of a frame type: FRAME_TYPE_PRESENCE_JOIN → "presence_join".
func FrameTypeName(t arqonpb.FrameType) string {
	name, ok := arqonpb.FrameType_name[int32(t)]
	if !ok || t == arqonpb.FrameType_FRAME_TYPE_UNSPECIFIED {
		return ""
	}
	return strings.ToLower(strings.TrimPrefix(name, typePrefix))
}

// ParseFrameType is the inverse of FrameTypeName; false for a name the protocol does not define.
func ParseFrameType(name string) (arqonpb.FrameType, bool) {
	if name == "" || name != strings.ToLower(name) {
		return 0, false
	}
	v, ok := arqonpb.FrameType_value[typePrefix+strings.ToUpper(name)]
	if !ok || v == 0 {
		return 0, false
	}
	return arqonpb.FrameType(v), true
}

// ---------------------------------------------------------------------------------------------------------------------
// JSON encoding

// EncodeJSON writes the JSON face of a frame: fields in proto order with lowerCamelCase names, default values left
// out (except `recovered` and `ifVersion` when set), JSON-carrying bytes as the JSON values they hold, a binary payload
// as base64 with "payloadFormat":"binary".
func EncodeJSON(f *arqonpb.Frame) ([]byte, error) {
	var buf bytes.Buffer
	if err := writeMessage(&buf, f.ProtoReflect()); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeString(buf *bytes.Buffer, s string) {
	b, _ := json.Marshal(s)
	buf.Write(b)
}

func isBinaryPayload(m protoreflect.Message, fd protoreflect.FieldDescriptor) bool {
	if fd.Name() != "payload" {
		return false
	}
	pf := m.Descriptor().Fields().ByName("payload_format")
	return pf != nil && m.Get(pf).Enum() == protoreflect.EnumNumber(arqonpb.PayloadFormat_PAYLOAD_FORMAT_BINARY)
}

func writeMessage(buf *bytes.Buffer, m protoreflect.Message) error {
	fields := m.Descriptor().Fields()
	buf.WriteByte('{')
	first := true
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if !m.Has(fd) {
			continue
		}
		if !first {
			buf.WriteByte(',')
		}
		first = false
		writeString(buf, fd.JSONName())
		buf.WriteByte(':')
		v := m.Get(fd)
		switch {
		case fd.IsMap():
			mp := v.Map()
			keys := make([]string, 0, mp.Len())
			mp.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
				keys = append(keys, k.String())
				return true
			})
			sort.Strings(keys)
			buf.WriteByte('{')
			for j, k := range keys {
				if j > 0 {
					buf.WriteByte(',')
				}
				writeString(buf, k)
				buf.WriteByte(':')
				writeString(buf, mp.Get(protoreflect.ValueOfString(k).MapKey()).String())
			}
			buf.WriteByte('}')
		case fd.IsList():
			list := v.List()
			buf.WriteByte('[')
			for j := 0; j < list.Len(); j++ {
				if j > 0 {
					buf.WriteByte(',')
				}
				var err error
				if fd.Kind() == protoreflect.MessageKind {
					err = writeMessage(buf, list.Get(j).Message())
				} else {
					err = writeScalar(buf, m, fd, list.Get(j))
				}
				if err != nil {
					return err
				}
			}
			buf.WriteByte(']')
		default:
			if err := writeScalar(buf, m, fd, v); err != nil {
				return err
			}
		}
	}
	buf.WriteByte('}')
	return nil
}

func writeScalar(buf *bytes.Buffer, m protoreflect.Message, fd protoreflect.FieldDescriptor, v protoreflect.Value) error {
	switch fd.Kind() {
	case protoreflect.MessageKind:
		return writeMessage(buf, v.Message())
	case protoreflect.EnumKind:
		n := v.Enum()
		switch fd.Enum().FullName() {
		case "arqon.v1.FrameType":
			name := FrameTypeName(arqonpb.FrameType(n))
			if name == "" {
				return newError(CodeFrameUnknownType, fmt.Sprintf("unknown frame type %d", n))
			}
			writeString(buf, name)
		case "arqon.v1.PayloadFormat":
			if arqonpb.PayloadFormat(n) == arqonpb.PayloadFormat_PAYLOAD_FORMAT_BINARY {
				writeString(buf, "binary")
			} else {
				writeString(buf, "json")
			}
		default:
			buf.WriteString(strconv.Itoa(int(n)))
		}
	case protoreflect.BytesKind:
		b := v.Bytes()
		if isBinaryPayload(m, fd) {
			writeString(buf, base64.StdEncoding.EncodeToString(b))
			return nil
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, b); err != nil {
			return newError(CodeFrameWrongType, fmt.Sprintf("%s does not hold JSON (mark raw bytes as binary)", fd.JSONName()))
		}
		buf.Write(compact.Bytes())
	case protoreflect.StringKind:
		writeString(buf, v.String())
	case protoreflect.BoolKind:
		buf.WriteString(strconv.FormatBool(v.Bool()))
	case protoreflect.Uint32Kind, protoreflect.Uint64Kind:
		buf.WriteString(strconv.FormatUint(v.Uint(), 10))
	case protoreflect.Int32Kind, protoreflect.Int64Kind:
		buf.WriteString(strconv.FormatInt(v.Int(), 10))
	default:
		return newError(CodeFrameWrongType, "unsupported field kind "+fd.Kind().String())
	}
	return nil
}

// ---------------------------------------------------------------------------------------------------------------------
// JSON decoding

// compactKeys maps the one-letter keys of a protocol 1.1 compact message object to the fields they stand for.
var compactKeys = map[string]string{
	"m": "room", "i": "id", "o": "offset", "e": "epoch", "t": "timestamp", "s": "sender", "h": "headers",
	"c": "inspection", "d": "delta", "f": "payload_format", "p": "payload",
}

const maxJSONDepth = 32

// DecodeJSON decodes the JSON face of a frame (either field spelling, protocol 1.1 compact message objects too).
// Errors are *Error: ARQ_FRAME_MALFORMED (not a JSON object), ARQ_FRAME_UNKNOWN_TYPE, ARQ_FRAME_WRONG_TYPE,
// ARQ_FRAME_TOO_DEEP.
func DecodeJSON(data []byte) (*arqonpb.Frame, error) {
	if depthExceeds(data, maxJSONDepth) {
		return nil, newError(CodeFrameTooDeep, fmt.Sprintf("JSON nesting deeper than %d levels", maxJSONDepth))
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil || obj == nil {
		return nil, newError(CodeFrameMalformed, "not a JSON object")
	}
	f := &arqonpb.Frame{}
	err := decodeFrameObject(obj, f)
	return f, err
}

func decodeFrameObject(obj map[string]json.RawMessage, f *arqonpb.Frame) error {
	m := f.ProtoReflect()
	_, hasType := obj["type"]
	if _, isCompact := obj["m"]; isCompact && !hasType {
		renamed := make(map[string]json.RawMessage, len(obj))
		for k, v := range obj {
			if field, ok := compactKeys[k]; ok {
				renamed[field] = v
			}
		}
		renamed["type"] = json.RawMessage(`"message"`)
		obj = renamed
	}
	raw, ok := obj["type"]
	if !ok {
		return newError(CodeFrameUnknownType, "the frame has no type")
	}
	var name string
	if json.Unmarshal(raw, &name) != nil {
		return newError(CodeFrameUnknownType, "type must be a string")
	}
	t, ok := ParseFrameType(name)
	if !ok {
		err := newError(CodeFrameUnknownType, fmt.Sprintf("unknown frame type %q", name))
		if rid, ok := obj["requestId"]; ok {
			_ = json.Unmarshal(rid, &err.RequestID)
		}
		return err
	}
	if err := decodeObject(obj, m); err != nil {
		if e, ok := err.(*Error); ok && f.RequestId != "" {
			e.RequestID = f.RequestId
		}
		return err
	}
	f.Type = t
	return nil
}

func lookup(obj map[string]json.RawMessage, fd protoreflect.FieldDescriptor) (json.RawMessage, bool) {
	if v, ok := obj[fd.JSONName()]; ok {
		return v, true
	}
	v, ok := obj[string(fd.Name())]
	return v, ok
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

func decodeObject(obj map[string]json.RawMessage, m protoreflect.Message) error {
	fields := m.Descriptor().Fields()
	var payload protoreflect.FieldDescriptor
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if fd.Name() == "type" && fd.Kind() == protoreflect.EnumKind {
			continue
		}
		raw, ok := lookup(obj, fd)
		if !ok {
			continue
		}
		if fd.Kind() == protoreflect.BytesKind {
			if fd.Name() == "payload" {
				payload = fd // decoded last: it depends on payload_format
				continue
			}
			if err := setJSONBytes(m, fd, raw); err != nil {
				return err
			}
			continue
		}
		if isNull(raw) {
			continue
		}
		if err := decodeField(m, fd, raw); err != nil {
			return err
		}
	}
	if payload != nil {
		raw, _ := lookup(obj, payload)
		if isBinaryPayload(m, payload) {
			var s string
			if json.Unmarshal(raw, &s) != nil {
				return newError(CodeFrameWrongType, "a binary payload must be base64 text")
			}
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return newError(CodeFrameWrongType, "a binary payload must be base64 text")
			}
			m.Set(payload, protoreflect.ValueOfBytes(b))
		} else if err := setJSONBytes(m, payload, raw); err != nil {
			return err
		}
	}
	return nil
}

func setJSONBytes(m protoreflect.Message, fd protoreflect.FieldDescriptor, raw json.RawMessage) error {
	var compact bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		return newError(CodeFrameWrongType, fd.JSONName()+" is not a JSON value")
	}
	m.Set(fd, protoreflect.ValueOfBytes(compact.Bytes()))
	return nil
}

func wrongType(fd protoreflect.FieldDescriptor, want string) error {
	return newError(CodeFrameWrongType, fmt.Sprintf("%s must be %s", fd.JSONName(), want))
}

func decodeField(m protoreflect.Message, fd protoreflect.FieldDescriptor, raw json.RawMessage) error {
	switch {
	case fd.IsMap():
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil || obj == nil {
			return wrongType(fd, "an object of strings")
		}
		mp := m.Mutable(fd).Map()
		for k, v := range obj {
			var s string
			if json.Unmarshal(v, &s) != nil {
				return wrongType(fd, "an object of strings")
			}
			if fd.Name() == "headers" {
				k = strings.ToLower(k)
			}
			mp.Set(protoreflect.ValueOfString(k).MapKey(), protoreflect.ValueOfString(s))
		}
		return nil
	case fd.IsList():
		var items []json.RawMessage
		if json.Unmarshal(raw, &items) != nil {
			return wrongType(fd, "a list")
		}
		list := m.Mutable(fd).List()
		if fd.Kind() != protoreflect.MessageKind {
			if fd.Kind() != protoreflect.StringKind {
				return wrongType(fd, "a supported list")
			}
			for _, item := range items {
				var s string
				if json.Unmarshal(item, &s) != nil {
					return wrongType(fd, "a list of strings")
				}
				list.Append(protoreflect.ValueOfString(s))
			}
			return nil
		}
		for _, item := range items {
			var obj map[string]json.RawMessage
			if json.Unmarshal(item, &obj) != nil || obj == nil {
				return wrongType(fd, "a list of objects")
			}
			elem := list.NewElement()
			if f, ok := elem.Message().Interface().(*arqonpb.Frame); ok {
				if err := decodeFrameObject(obj, f); err != nil {
					return err
				}
			} else if err := decodeObject(obj, elem.Message()); err != nil {
				return err
			}
			list.Append(elem)
		}
		return nil
	}
	switch fd.Kind() {
	case protoreflect.MessageKind:
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil || obj == nil {
			return wrongType(fd, "an object")
		}
		sub := m.Mutable(fd).Message()
		return decodeObject(obj, sub)
	case protoreflect.EnumKind:
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return wrongType(fd, "a string")
		}
		if fd.Enum().FullName() == "arqon.v1.PayloadFormat" {
			switch s {
			case "json":
				m.Set(fd, protoreflect.ValueOfEnum(0))
			case "binary":
				m.Set(fd, protoreflect.ValueOfEnum(protoreflect.EnumNumber(arqonpb.PayloadFormat_PAYLOAD_FORMAT_BINARY)))
			default:
				return wrongType(fd, `"json" or "binary"`)
			}
			return nil
		}
		return wrongType(fd, "a known value")
	case protoreflect.StringKind:
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return wrongType(fd, "a string")
		}
		m.Set(fd, protoreflect.ValueOfString(s))
	case protoreflect.BoolKind:
		var b bool
		if json.Unmarshal(raw, &b) != nil {
			return wrongType(fd, "a boolean")
		}
		m.Set(fd, protoreflect.ValueOfBool(b))
	case protoreflect.Uint32Kind, protoreflect.Uint64Kind, protoreflect.Int32Kind, protoreflect.Int64Kind:
		var n json.Number
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		if d.Decode(&n) != nil {
			return wrongType(fd, "a number")
		}
		fv, err := strconv.ParseFloat(string(n), 64)
		if err != nil || fv != math.Trunc(fv) || math.Abs(fv) > 1<<53 {
			return wrongType(fd, "a whole number of at most 2^53")
		}
		switch fd.Kind() {
		case protoreflect.Uint32Kind:
			if fv < 0 || fv > math.MaxUint32 {
				return wrongType(fd, "a non-negative 32-bit number")
			}
			m.Set(fd, protoreflect.ValueOfUint32(uint32(fv)))
		case protoreflect.Uint64Kind:
			if fv < 0 {
				return wrongType(fd, "a non-negative number")
			}
			m.Set(fd, protoreflect.ValueOfUint64(uint64(fv)))
		case protoreflect.Int32Kind:
			if fv < math.MinInt32 || fv > math.MaxInt32 {
				return wrongType(fd, "a 32-bit number")
			}
			m.Set(fd, protoreflect.ValueOfInt32(int32(fv)))
		default:
			m.Set(fd, protoreflect.ValueOfInt64(int64(fv)))
		}
	default:
		return wrongType(fd, "a supported value")
	}
	return nil
}

// depthExceeds reports whether JSON text nests deeper than limit (objects and arrays), without parsing it.
func depthExceeds(data []byte, limit int) bool {
	depth := 0
	inString, escaped := false, false
	for _, c := range data {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > limit {
				return true
			}
		case '}', ']':
			depth--
		}
	}
	return false
}

// ---------------------------------------------------------------------------------------------------------------------
// Protocol 1.1

const (
	headerTimestamp = "x-timestamp"
	headerTwistID   = "x-twist-id"
	defaultTwistID  = "main"
)

// ExpandMessage puts back what protocol 1.0 carries in a message received on a 1.1 connection: `epoch` (when the frame
// has none) is the one given (the epoch the subscription was last told, or the list frame's), `x-timestamp` comes
// from `timestamp`, and `x-twist-id` is "main" when absent. Frames of other types are returned unchanged. The frame
// given is not modified.
func ExpandMessage(f *arqonpb.Frame, epoch string) *arqonpb.Frame {
	if f.Type != arqonpb.FrameType_FRAME_TYPE_MESSAGE {
		return f
	}
	out := proto.Clone(f).(*arqonpb.Frame)
	if out.Epoch == "" && epoch != "" {
		out.Epoch = epoch
	}
	if out.Headers == nil {
		out.Headers = map[string]string{}
	}
	if _, ok := out.Headers[headerTimestamp]; !ok && out.Timestamp != 0 {
		out.Headers[headerTimestamp] = strconv.FormatInt(out.Timestamp, 10)
	}
	if _, ok := out.Headers[headerTwistID]; !ok {
		out.Headers[headerTwistID] = defaultTwistID
	}
	return out
}
