package webhook

import (
	"fmt"

	gojson "github.com/goccy/go-json"
)

// unmarshal decodes the JSON of a review (or a pod) into v as encoding/json does (TestUnmarshalAsEncodingJSON
// holds it to that), with goccy/go-json: it skips the members the views do not name (managedFields, env,
// volumes, status: most of a pod) about ten times faster, which is most of what a review costs the webhook
// (BenchmarkServer). A panic of the decoder is an error, so that the review falls back to encoding/json and
// is still answered.
func unmarshal(data []byte, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("decode: %v", r)
		}
	}()
	return gojson.Unmarshal(data, v)
}
