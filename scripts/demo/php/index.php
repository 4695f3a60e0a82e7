<?php
// make run's PHP demo (type "php"): a script under the app's root.
header("Content-Type: text/plain");
printf("Hello from a Warren PHP worker (PHP %s, pid %d)\n", PHP_VERSION, getmypid());
printf("%s %s\n", $_SERVER["REQUEST_METHOD"], $_SERVER["REQUEST_URI"]);
