package arqon

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/arqonbus/arqonbus/packages/sdk-go/arqonpb"
)

type vector struct {
	Name     string          `json:"name"`
	Protocol string          `json:"protocol"`
	Epoch    string          `json:"epoch"`
	JSON     json.RawMessage `json:"json"`
	Protobuf string          `json:"protobuf"`
	Expanded json.RawMessage `json:"expanded"`
}

func loadVectors(t *testing.T, dir string) map[string]vector {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "proto", "vectors", dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]vector{}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var v vector
		if err := json.Unmarshal(data, &v); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		out[filepath.Base(file)] = v
	}
	return out
}

func jsonValue(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		t.Fatalf("not JSON: %v: %s", err, data)
	}
	return v
}

// topKeys returns an object's keys in the order they are written.
func topKeys(t *testing.T, data []byte) []string {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(data))
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %s", data)
	}
	var keys []string
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := d.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

func TestVectorsCoverEveryFrameType(t *testing.T) {
	vectors := loadVectors(t, "")
	if len(vectors) < 30 {
		t.Fatalf("only %d vectors found", len(vectors))
	}
	seen := map[string]bool{}
	for _, v := range vectors {
		var head struct{ Type string }
		_ = json.Unmarshal(v.JSON, &head)
		seen[head.Type] = true
	}
	for n := range arqonpb.FrameType_name {
		if n == 0 {
			continue
		}
		if name := FrameTypeName(arqonpb.FrameType(n)); !seen[name] {
			t.Errorf("no vector for frame type %q", name)
		}
	}
}

func TestVectors(t *testing.T) {
	vectors := loadVectors(t, "")
	names := make([]string, 0, len(vectors))
	for n := range vectors {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		v := vectors[name]
		t.Run(v.Name, func(t *testing.T) {
			pb, err := base64.StdEncoding.DecodeString(v.Protobuf)
			if err != nil {
				t.Fatal(err)
			}
			fromPB, err := DecodeFrame(pb, true)
			if err != nil {
				t.Fatalf("protobuf: %v", err)
			}
			fromJSON, err := DecodeFrame(v.JSON, false)
			if err != nil {
				t.Fatalf("json: %v", err)
			}
			if !proto.Equal(fromPB, fromJSON) {
				t.Fatalf("the two faces differ:\n pb   %v\n json %v", fromPB, fromJSON)
			}
			// JSON → protobuf gives the twin's bytes (or, where map order differs, the same frame).
			enc, err := EncodeProtobuf(fromJSON)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(enc, pb) {
				again, err := DecodeProtobuf(enc)
				if err != nil || !proto.Equal(again, fromPB) {
					t.Fatalf("protobuf re-encoding differs: %v", err)
				}
				if len(fromPB.Headers) < 2 {
					t.Errorf("protobuf bytes differ from the twin's for a frame without several headers")
				}
			}
			// protobuf → JSON gives the vector's JSON, keys in proto order.
			text, err := EncodeJSON(fromPB)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := jsonValue(t, text), jsonValue(t, v.JSON); !reflect.DeepEqual(got, want) {
				t.Fatalf("JSON differs:\n got  %s\n want %s", text, v.JSON)
			}
			if got, want := topKeys(t, text), topKeys(t, v.JSON); !reflect.DeepEqual(got, want) {
				t.Fatalf("key order differs: %v, want %v", got, want)
			}
			// Both codecs of the SDK round-trip it.
			for _, codec := range []Codec{JSONCodec, ProtobufCodec} {
				data, binary, err := codec.Encode(fromPB)
				if err != nil {
					t.Fatal(err)
				}
				back, err := DecodeFrame(data, binary)
				if err != nil || !proto.Equal(back, fromPB) {
					t.Fatalf("%s round trip: %v", codec.Name(), err)
				}
			}
		})
	}
}

func TestVectors11(t *testing.T) {
	vectors := loadVectors(t, "1.1")
	for _, want := range []string{"message.json", "history_page.json", "subscribed_recovered.json"} {
		if _, ok := vectors[want]; !ok {
			t.Fatalf("missing 1.1 vector %s", want)
		}
	}
	for _, v := range vectors {
		t.Run(v.Name, func(t *testing.T) {
			if v.Protocol != "1.1" {
				t.Fatalf("protocol %q", v.Protocol)
			}
			pb, _ := base64.StdEncoding.DecodeString(v.Protobuf)
			fromPB, err := DecodeProtobuf(pb)
			if err != nil {
				t.Fatal(err)
			}
			fromJSON, err := DecodeJSON(v.JSON)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(fromPB, fromJSON) {
				t.Fatalf("the two faces differ:\n pb   %v\n json %v", fromPB, fromJSON)
			}
			var expanded *arqonpb.Frame
			if fromPB.Type == arqonpb.FrameType_FRAME_TYPE_MESSAGE {
				expanded = ExpandMessage(fromPB, v.Epoch)
			} else {
				expanded = proto.Clone(fromPB).(*arqonpb.Frame)
				for i, m := range expanded.Messages {
					expanded.Messages[i] = ExpandMessage(m, expanded.Epoch)
				}
			}
			text, err := EncodeJSON(expanded)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := jsonValue(t, text), jsonValue(t, v.Expanded); !reflect.DeepEqual(got, want) {
				t.Fatalf("expanded differs:\n got  %s\n want %s", text, v.Expanded)
			}
			if !proto.Equal(fromPB, mustDecode(t, v.Protobuf)) {
				t.Fatal("ExpandMessage changed its argument")
			}
		})
	}
}

func mustDecode(t *testing.T, b64 string) *arqonpb.Frame {
	pb, _ := base64.StdEncoding.DecodeString(b64)
	f, err := DecodeProtobuf(pb)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		in   string
		code string
	}{
		{`[1,2]`, CodeFrameMalformed},
		{`not json`, CodeFrameMalformed},
		{`{"room":"lobby"}`, CodeFrameUnknownType},
		{`{"type":"teleport","requestId":"9"}`, CodeFrameUnknownType},
		{`{"type":"subscribe","room":7}`, CodeFrameWrongType},
		{`{"type":"history","room":"a","history":{"fromOffset":-1}}`, CodeFrameWrongType},
		{`{"type":"message","offset":1.5}`, CodeFrameWrongType},
		{`{"type":"message","offset":18014398509481984}`, CodeFrameWrongType},
		{`{"type":"publish","payload":"%%%","payloadFormat":"binary"}`, CodeFrameWrongType},
		{`{"type":"publish","payloadFormat":"xml"}`, CodeFrameWrongType},
		{`{"type":"publish","payload":` + string(bytes.Repeat([]byte("["), 40)) + string(bytes.Repeat([]byte("]"), 40)) + `}`, CodeFrameTooDeep},
	}
	for _, c := range cases {
		_, err := DecodeJSON([]byte(c.in))
		if CodeOf(err) != c.code {
			t.Errorf("%s: got %v, want %s", c.in, err, c.code)
		}
	}
	if _, err := DecodeJSON([]byte(`{"type":"teleport","requestId":"9"}`)); err.(*Error).RequestID != "9" {
		t.Errorf("the request id of an undecodable frame is kept: %v", err)
	}
	if _, err := DecodeProtobuf([]byte{0xff, 0xff}); CodeOf(err) != CodeFrameMalformed {
		t.Errorf("bad protobuf: %v", err)
	}
	if _, err := DecodeProtobuf([]byte{}); CodeOf(err) != CodeFrameUnknownType {
		t.Errorf("empty protobuf: %v", err)
	}
	// snake_case is accepted, header names are lowered
	f, err := DecodeJSON([]byte(`{"type":"publish","request_id":"1","headers":{"X-Trace":"a"},"idempotency_key":"k"}`))
	if err != nil || f.RequestId != "1" || f.Headers["x-trace"] != "a" || f.IdempotencyKey != "k" {
		t.Errorf("snake_case: %v %v", f, err)
	}
	// a protobuf payload that is not JSON cannot be written as JSON unless it is marked binary
	if _, err := EncodeJSON(&arqonpb.Frame{Type: arqonpb.FrameType_FRAME_TYPE_PUBLISH, Payload: []byte{0xff}}); CodeOf(err) != CodeFrameWrongType {
		t.Errorf("non-JSON payload: %v", err)
	}
}

func TestErrorCodesMatchDocs(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "errors.md"))
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, line := range bytes.Split(data, []byte("\n")) {
		if bytes.HasPrefix(line, []byte("| `")) {
			end := bytes.IndexByte(line[3:], '`')
			code := string(line[3 : 3+end])
			if code == "" || code[0] < 'A' || code[0] > 'Z' {
				continue
			}
			documented = append(documented, code)
		}
	}
	if !reflect.DeepEqual(documented, AllCodes) {
		t.Fatalf("docs/errors.md lists\n %v\nthe SDK\n %v", documented, AllCodes)
	}
}

func TestShouldReconnect(t *testing.T) {
	yes := []int{1001, 1006, 1009, 1011, 1012, 1013, 4000, 4001, 4002, 4003, 4004, 4499}
	no := []int{1000, 1002, 1003, 1008, 4500, 4501, 4502, 4503, 4504, 4999}
	for _, c := range yes {
		if !ShouldReconnect(c) {
			t.Errorf("%d should reconnect", c)
		}
	}
	for _, c := range no {
		if ShouldReconnect(c) {
			t.Errorf("%d is terminal", c)
		}
	}
}

func TestBackoffDelay(t *testing.T) {
	r := ReconnectOptions{InitialDelay: 100 * time.Millisecond, MaxDelay: time.Second}
	for attempt, ceiling := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 60: time.Second} {
		var most time.Duration
		for i := 0; i < 200; i++ {
			d := BackoffDelay(attempt, r)
			if d < 0 || d >= ceiling {
				t.Fatalf("attempt %d: %s outside [0, %s)", attempt, d, ceiling)
			}
			most = max(most, d)
		}
		if most < ceiling/2 {
			t.Fatalf("attempt %d: no delay above %s in 200 draws (jitter spans the whole range)", attempt, ceiling/2)
		}
	}
	if d := BackoffDelay(40, ReconnectOptions{InitialDelay: time.Hour, MaxDelay: 2 * time.Hour}); d < 0 || d >= 2*time.Hour {
		t.Fatalf("large delays overflow: %s", d)
	}
}
