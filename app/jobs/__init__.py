"""Scheduled work: rollup refreshes and retention (APScheduler, in every server process;
advisory locks make a job that two processes run at once do its work once)."""
