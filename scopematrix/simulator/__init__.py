"""An embedded HubSpot install-flow simulator: hosted screens, permission rules and the token API."""
