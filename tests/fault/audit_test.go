package fault

// auditSQL is installed in the test schema only, never by the product's
// migrations. It records, tagged with the writer's application_name and
// transaction, every canvas version bump, every lastMutationID write and
// every node and edge write. Node writes carry the title and x they moved
// to (the suite's mutations make each unique): a value moved to twice is a
// mutation applied twice.
const auditSQL = `
CREATE TABLE fault_audit (
    id          bigserial   PRIMARY KEY,
    ts          timestamptz NOT NULL DEFAULT clock_timestamp(),
    app         text        NOT NULL DEFAULT current_setting('application_name'),
    tx          bigint      NOT NULL DEFAULT txid_current(),
    tbl         text        NOT NULL,
    op          text        NOT NULL,
    canvas_id   text        NOT NULL,
    row_id      text        NOT NULL,
    old_version bigint,
    new_version bigint,
    old_lmid    bigint,
    new_lmid    bigint,
    tag_title   text,
    tag_x       double precision,
    reborn      boolean     NOT NULL DEFAULT false
);
CREATE INDEX fault_audit_tx ON fault_audit (tx, canvas_id);

CREATE FUNCTION fault_audit_canvas() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO fault_audit (tbl, op, canvas_id, row_id, new_version)
        VALUES ('canvases', TG_OP, NEW.id, NEW.id, NEW.version);
    ELSIF NEW.version IS DISTINCT FROM OLD.version THEN
        INSERT INTO fault_audit (tbl, op, canvas_id, row_id, old_version, new_version)
        VALUES ('canvases', TG_OP, NEW.id, NEW.id, OLD.version, NEW.version);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER fault_audit AFTER INSERT OR UPDATE ON canvases
    FOR EACH ROW EXECUTE FUNCTION fault_audit_canvas();

CREATE FUNCTION fault_audit_client() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO fault_audit (tbl, op, canvas_id, row_id, new_version, new_lmid)
        VALUES ('clients', TG_OP, NEW.canvas_id, NEW.id, NEW.version, NEW.last_mutation_id);
    ELSE
        INSERT INTO fault_audit (tbl, op, canvas_id, row_id, old_version, new_version, old_lmid, new_lmid)
        VALUES ('clients', TG_OP, NEW.canvas_id, NEW.id, OLD.version, NEW.version, OLD.last_mutation_id, NEW.last_mutation_id);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER fault_audit AFTER INSERT OR UPDATE ON clients
    FOR EACH ROW EXECUTE FUNCTION fault_audit_client();

CREATE FUNCTION fault_audit_node() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO fault_audit (tbl, op, canvas_id, row_id, new_version, tag_title, tag_x)
        VALUES ('nodes', TG_OP, NEW.canvas_id, NEW.id, NEW.version, NEW.title, NEW.x);
    ELSE
        INSERT INTO fault_audit (tbl, op, canvas_id, row_id, old_version, new_version, tag_title, tag_x, reborn)
        VALUES ('nodes', TG_OP, NEW.canvas_id, NEW.id, OLD.version, NEW.version,
                CASE WHEN NEW.title IS DISTINCT FROM OLD.title THEN NEW.title END,
                CASE WHEN NEW.x IS DISTINCT FROM OLD.x THEN NEW.x END,
                OLD.deleted AND NOT NEW.deleted);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER fault_audit AFTER INSERT OR UPDATE ON nodes
    FOR EACH ROW EXECUTE FUNCTION fault_audit_node();

CREATE FUNCTION fault_audit_edge() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO fault_audit (tbl, op, canvas_id, row_id, new_version)
        VALUES ('edges', TG_OP, NEW.canvas_id, NEW.id, NEW.version);
    ELSE
        INSERT INTO fault_audit (tbl, op, canvas_id, row_id, old_version, new_version, reborn)
        VALUES ('edges', TG_OP, NEW.canvas_id, NEW.id, OLD.version, NEW.version, OLD.deleted AND NOT NEW.deleted);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER fault_audit AFTER INSERT OR UPDATE ON edges
    FOR EACH ROW EXECUTE FUNCTION fault_audit_edge();
`
