DROP TABLE log_clients;
