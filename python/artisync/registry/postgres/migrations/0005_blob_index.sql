-- Which blobs each manifest holds (issue 17), so that the server can answer "may this
-- caller read a committed version that contains this blob?" without reading manifests:
-- a node may skip uploading a blob, and may download one, only then (DESIGN.md, "Many
-- nodes": a digest alone proves nothing). A manifest's rows are written once, when the
-- server has verified its new blobs in the bucket, before the version that names it is
-- committed; rows of a manifest whose commit then failed join no version and prove
-- nothing. Only the server's own store is indexed: manifest keys are per store.
CREATE TABLE manifest_blobs (
    md5 bytea NOT NULL CHECK (length(md5) = 16),
    manifest_key text COLLATE "C" NOT NULL,
    PRIMARY KEY (md5, manifest_key)
);

CREATE INDEX versions_by_manifest ON versions (manifest_key) WHERE state = 'COMMITTED';
CREATE INDEX parts_by_manifest ON parts (manifest_key);

-- Multipart uploads that brought exactly the parts of a blob the bucket already held
-- (a completion never replaces an object, so the object keeps its first uploader): the
-- caller proved they hold the bytes, which the object's metadata cannot say.
CREATE TABLE blob_uploads (
    md5 bytea NOT NULL CHECK (length(md5) = 16),
    uploader text COLLATE "C" NOT NULL,
    uploaded_at double precision NOT NULL,
    PRIMARY KEY (md5, uploader)
);
