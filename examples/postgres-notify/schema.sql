-- The example's table and the trigger that announces every change.
-- Run it in a database of its own:
--   createdb -h 127.0.0.1 -U postgres fireboom_example
--   psql -h 127.0.0.1 -U postgres -d fireboom_example -f schema.sql

CREATE TABLE IF NOT EXISTS orders (
  id      serial PRIMARY KEY,
  user_id text NOT NULL,
  status  text NOT NULL DEFAULT 'new',
  total   numeric(10, 2)
);

-- Each inserted or updated row is sent on channel "orders" as JSON whose
-- field names are those of the GraphQL type OrderEvent (events.graphql).
CREATE OR REPLACE FUNCTION notify_order() RETURNS trigger AS $$
BEGIN
  PERFORM pg_notify('orders', json_build_object(
    'id', NEW.id,
    'userId', NEW.user_id,
    'status', NEW.status,
    'total', NEW.total
  )::text);
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS orders_notify ON orders;
CREATE TRIGGER orders_notify
  AFTER INSERT OR UPDATE ON orders
  FOR EACH ROW EXECUTE FUNCTION notify_order();
