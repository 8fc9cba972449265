// Package controllers holds one controller per billing kind and the generic external-resource loop they share.
// The controllers are added by the reconcile work; the package is kept so the layout matches the design.
package controllers
