//go:build !race

package gctune

const raceBuild = false
