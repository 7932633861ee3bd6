-- Deleting a canvas removes its row at once and its content in the
-- background, in small batches (canvas_purges lists what is left to remove).
-- The content therefore must outlive the canvas row for a while: the
-- cascading foreign keys to canvases would delete it all in the deleting
-- transaction. Rows are still only written together with a bump of their
-- canvas's version row, so none is written for a canvas that does not exist.
ALTER TABLE nodes DROP CONSTRAINT nodes_canvas_id_fkey;
ALTER TABLE edges DROP CONSTRAINT edges_canvas_id_fkey;
ALTER TABLE client_groups DROP CONSTRAINT client_groups_canvas_id_fkey;

CREATE TABLE canvas_purges (
    canvas_id  text        PRIMARY KEY,
    -- the epoch of the deleted incarnation, for the record.
    epoch      text        NOT NULL,
    deleted_at timestamptz NOT NULL DEFAULT now()
);
