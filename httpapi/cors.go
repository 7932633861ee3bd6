package httpapi

import (
	"net/http"
	"slices"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// cors lets the listed origins call the API from a browser; with none,
// browsers allow only same-origin calls. Origins match exactly ("*" for
// any, then without credentials).
func cors(origins []string) echo.MiddlewareFunc {
	any := slices.Contains(origins, "*")
	return middleware.CORSWithConfig(middleware.CORSConfig{
		AllowOriginFunc: func(origin string) (bool, error) {
			return any || slices.Contains(origins, origin), nil
		},
		AllowMethods: []string{http.MethodGet, http.MethodPost, http.MethodOptions},
		AllowHeaders: []string{echo.HeaderAuthorization, echo.HeaderContentType, "Last-Event-ID", "X-Replicache-RequestID"},
		// Cookies carry tokens to the events route; never for any origin.
		AllowCredentials: !any,
		ExposeHeaders:    []string{"Retry-After"},
		MaxAge:           600,
	})
}
