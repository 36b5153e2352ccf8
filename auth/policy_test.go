package auth

import "testing"

func TestPolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		p     Policy
		roles []string
		want  bool
	}{
		{"zero policy allows anyone", Policy{}, nil, true},
		{"requireMatchAll all present", Policy{RequireMatchAll: []string{"a", "b"}}, []string{"b", "c", "a"}, true},
		{"requireMatchAll one missing", Policy{RequireMatchAll: []string{"a", "b"}}, []string{"a"}, false},
		{"requireMatchAll no roles", Policy{RequireMatchAll: []string{"a"}}, nil, false},
		{"requireMatchAny one present", Policy{RequireMatchAny: []string{"a", "b"}}, []string{"b"}, true},
		{"requireMatchAny none present", Policy{RequireMatchAny: []string{"a", "b"}}, []string{"c"}, false},
		{"denyMatchAll has all", Policy{DenyMatchAll: []string{"a", "b"}}, []string{"a", "b", "c"}, false},
		{"denyMatchAll has some", Policy{DenyMatchAll: []string{"a", "b"}}, []string{"a"}, true},
		{"denyMatchAny has one", Policy{DenyMatchAny: []string{"a", "b"}}, []string{"b"}, false},
		{"denyMatchAny has none", Policy{DenyMatchAny: []string{"a", "b"}}, []string{"c"}, true},
		{"case-sensitive", Policy{RequireMatchAny: []string{"Admin"}}, []string{"admin"}, false},
		{"require and deny: deny wins", Policy{RequireMatchAny: []string{"a"}, DenyMatchAny: []string{"banned"}}, []string{"a", "banned"}, false},
		{"require and deny: allowed", Policy{RequireMatchAll: []string{"a"}, RequireMatchAny: []string{"x", "y"}, DenyMatchAll: []string{"a", "z"}}, []string{"a", "y"}, true},
		{"empty lists are no constraint", Policy{RequireMatchAll: []string{}, DenyMatchAny: []string{}}, nil, true},
	}
	for _, tc := range tests {
		if got := tc.p.Allows(tc.roles); got != tc.want {
			t.Errorf("%s: Allows(%v) = %v, want %v", tc.name, tc.roles, got, tc.want)
		}
	}
	if !(Policy{}).IsZero() || !(Policy{DenyMatchAny: []string{}}).IsZero() || (Policy{DenyMatchAny: []string{"x"}}).IsZero() {
		t.Error("IsZero")
	}
}
