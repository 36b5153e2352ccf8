package config

import (
	"reflect"
	"sort"
	"strings"
)

// Diff lists the settings whose values differ between a and b, as JSON
// paths ("upstream.url", "subscriptions.heartbeat"). Objects are compared
// field by field; maps ("operations", "upstream.headers") and lists count
// as one setting each. The paths are sorted; values are never returned,
// since they may be secrets.
func Diff(a, b *Config) []string {
	var out []string
	diffStruct(reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem(), "", &out)
	sort.Strings(out)
	return out
}

func diffStruct(a, b reflect.Value, prefix string, out *[]string) {
	t := a.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		path := prefix + name
		fa, fb := a.Field(i), b.Field(i)
		if f.Type.Kind() == reflect.Struct {
			diffStruct(fa, fb, path+".", out)
			continue
		}
		if !reflect.DeepEqual(fa.Interface(), fb.Interface()) {
			*out = append(*out, path)
		}
	}
}
