"""Daily KPIs per channel and cross-channel behaviours (ROPO, showrooming)."""
