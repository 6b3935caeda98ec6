"""``lintas opd|apps|subscribers|subscriptions|directory``: who is on the platform."""
