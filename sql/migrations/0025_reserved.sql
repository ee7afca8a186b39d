-- Number 0025 is reserved for a migration written at the same time as 0027; this file holds the place so the
-- numbers run without gaps, and is deleted when that migration is merged (it changes nothing).
SELECT 1;
