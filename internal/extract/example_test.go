package extract_test

import (
	"fmt"

	"github.com/deployment-tracker/deployment-tracker/internal/extract"
)

func Example() {
	rule, err := extract.ParseFrom("container:app")
	if err != nil {
		panic(err)
	}
	rule.Regexp = `^v(\d+\.\d+\.\d+)`
	rule.Template = "refs/tags/release-{}"
	e, err := extract.Compile(rule)
	if err != nil {
		panic(err)
	}
	containers := []extract.Container{
		{Name: "proxy", Image: "envoyproxy/envoy:v1.30.1"},
		{Name: "app", Image: "ghcr.io/o/app:v1.4.2@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
	}
	fmt.Println(e.Ref(nil, containers))

	_, err = e.Ref(nil, containers[:1])
	fmt.Println(err)
	// Output:
	// refs/tags/release-1.4.2 <nil>
	// container "app" not found (containers: proxy)
}

func ExampleImageTag() {
	fmt.Println(extract.ImageTag("ghcr.io/o/app:v1.2@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"))
	fmt.Println(extract.ImageTag("localhost:5000/app"))
	// Output:
	// v1.2
	// latest
}
