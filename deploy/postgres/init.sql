-- One database per service: no service reads another's tables.
CREATE DATABASE intake;
CREATE DATABASE planning;
CREATE DATABASE consent;
CREATE DATABASE notify;
CREATE DATABASE municipality;
