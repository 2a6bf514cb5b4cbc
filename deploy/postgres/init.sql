-- One database per service, owned by that service's own role, and no service may connect to
-- another's. The roles get their passwords from the provisioning step
-- (deploy/containers/provision.py), which also creates anything missing here.
CREATE ROLE intake LOGIN;
CREATE DATABASE intake OWNER intake;
REVOKE ALL ON DATABASE intake FROM PUBLIC;
CREATE ROLE planning LOGIN;
CREATE DATABASE planning OWNER planning;
REVOKE ALL ON DATABASE planning FROM PUBLIC;
CREATE ROLE consent LOGIN;
CREATE DATABASE consent OWNER consent;
REVOKE ALL ON DATABASE consent FROM PUBLIC;
CREATE ROLE notify LOGIN;
CREATE DATABASE notify OWNER notify;
REVOKE ALL ON DATABASE notify FROM PUBLIC;
CREATE ROLE municipality LOGIN;
CREATE DATABASE municipality OWNER municipality;
REVOKE ALL ON DATABASE municipality FROM PUBLIC;
