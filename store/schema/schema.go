// Package schema lists every package's migrations in the order they apply.
// It is the one list the server and the tests migrate with; a package that
// adds tables adds its Migrations() here.
package schema

import (
	"github.com/hushflow/hushflow/apps"
	"github.com/hushflow/hushflow/auth"
	"github.com/hushflow/hushflow/flows"
	"github.com/hushflow/hushflow/projects"
	"github.com/hushflow/hushflow/secrets"
	"github.com/hushflow/hushflow/store"
)

// All returns the migrations of every package.
func All() []store.Migration {
	var ms []store.Migration
	ms = append(ms, projects.Migrations()...)
	ms = append(ms, auth.Migrations()...)
	ms = append(ms, secrets.Migrations()...)
	ms = append(ms, flows.Migrations()...)
	ms = append(ms, apps.Migrations()...)
	return ms
}
