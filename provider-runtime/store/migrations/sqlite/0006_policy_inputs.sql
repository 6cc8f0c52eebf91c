-- Each distinct input a bundle revision decided on, kept once (issue 18): with the decision
-- cache, a decision is a function of the part of the request the policy reads, so its row
-- points at that input by digest instead of carrying a masked copy of every request.
CREATE TABLE policy_inputs (
    revision TEXT NOT NULL,
    digest   TEXT NOT NULL,
    input    TEXT NOT NULL,
    PRIMARY KEY (revision, digest)
);
-- Set when the decision's input is in policy_inputs; `input` is then empty.
ALTER TABLE policy_decisions ADD COLUMN input_digest TEXT;
