"""Customer service (客服): support items, the dashboard's queries, email correction, the daily digest."""
