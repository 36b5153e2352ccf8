// Package config reads fireboom.json: plain structs with documented zero
// values, decoded strictly (unknown keys, wrong types and bad durations are
// errors naming their JSON path), with ${ENV} expansion in strings and
// relative paths resolved against the config file's folder.
package config
