package tests

import (
	"github.com/canvasd/canvasd/actors"
	"github.com/canvasd/canvasd/httpapi"
)

type (
	actorsConfig = actors.Config
	httpConfig   = httpapi.Config
)
