-- Customers who signed up since :since (bound by the driver; see docs/data.md).
SELECT customer_id, signup_date, tenure, plan, charges, tickets, churned
FROM customers
WHERE signup_date >= :since
ORDER BY customer_id
