"""Radio sources of the gateway: each turns what a concentrator or network server delivers into Uplinks."""
