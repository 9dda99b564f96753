<?php
/**
 * UVox SMS provider for Vtiger CRM 7 and 8 (module SMSNotifier).
 *
 * Install: copy this file to <vtiger>/modules/SMSNotifier/providers/UVox.php, then in
 * SMS Notifier > Server configuration pick "UVox" and fill User Name, Password,
 * Accountnumber, Apikey, From (and the UVox address if your operator is not my.unityvox.com).
 *
 * Vtiger finds the class from the file name: its loader splits "SMSNotifier_UVox_Provider"
 * on "_" into module / name / type, so the file must be UVox.php and getName() "UVox".
 *
 * Copyright (C) UVox contributors. AGPL-3.0-or-later.
 */

class SMSNotifier_UVox_Provider implements SMSNotifier_ISMSProvider_Model
{
    const PROVIDER_NAME = 'UVox';
    const DEFAULT_URL = 'https://my.unityvox.com';
    const API_PATH = '/api/get-api/v1/';

    /** The API takes at most 200 recipients in one request; more are sent in several requests. */
    const MAX_RECIPIENTS = 200;

    /**
     * Vtiger workflows call send() inside the request that saves a record, so a slow or dead
     * platform must not hang the CRM user's page: a few seconds to connect, a few more to answer.
     * A developer may override the total with setParameter('timeout', seconds); the form does
     * not show it.
     */
    const CONNECT_TIMEOUT = 3;
    const TOTAL_TIMEOUT = 10;

    /** Column widths of vtiger_smsnotifier_status: a longer value breaks the INSERT on strict MySQL. */
    const MAX_ID = 50;
    const MAX_STATUS = 10;
    const MAX_MESSAGE = 100;
    const MAX_TO = 20;

    const VERSION = '1.0.0';

    private $userName = '';
    private $password = '';
    private $parameters = array();

    /**
     * Form fields besides User Name and Password, in the manual's order. Names are the keys
     * Vtiger stores in vtiger_smsnotifier_servers.parameters and hands back to setParameter().
     */
    private static $REQUIRED_PARAMETERS = array(
        array('name' => 'accountnumber', 'label' => 'Accountnumber', 'type' => 'text'),
        array('name' => 'apikey', 'label' => 'Apikey', 'type' => 'text'),
        array('name' => 'from', 'label' => 'From', 'type' => 'text'),
        array('name' => 'url', 'label' => 'UVox address (empty: https://my.unityvox.com)', 'type' => 'text'),
    );

    /**
     * Codes of sms-api/status from the manual. Each maps to a Vtiger status and whether Vtiger should ask again later (needlookup).
     */
    private static $STATUS_CODES = array(
        '011' => array(self::MSG_STATUS_PROCESSING, 1),   // To send
        '012' => array(self::MSG_STATUS_PROCESSING, 1),   // No plan available to send or Credit
        '013' => array(self::MSG_STATUS_DISPATCHED, 1),   // SMS Sent (a delivery receipt may follow)
    );

    /** The platform's 1xx codes for final states (110 Delivered ... 114 Failed). */
    private static $FINAL_CODES = array(
        '110' => array(self::MSG_STATUS_DELIVERED, 0),
        '111' => array(self::MSG_STATUS_FAILED, 0),
        '112' => array(self::MSG_STATUS_FAILED, 0),
        '113' => array(self::MSG_STATUS_FAILED, 0),
        '114' => array(self::MSG_STATUS_FAILED, 0),
    );

    /** Message states the platform may report with its 1xx codes ("state" field). */
    private static $STATES = array(
        'waiting_balance' => array(self::MSG_STATUS_PROCESSING, 1),
        'queued' => array(self::MSG_STATUS_PROCESSING, 1),
        'submitting' => array(self::MSG_STATUS_PROCESSING, 1),
        'submitted' => array(self::MSG_STATUS_DISPATCHED, 1),
        'sent' => array(self::MSG_STATUS_DISPATCHED, 1),
        'delivered' => array(self::MSG_STATUS_DELIVERED, 0),
        'undelivered' => array(self::MSG_STATUS_FAILED, 0),
        'expired' => array(self::MSG_STATUS_FAILED, 0),
        'rejected' => array(self::MSG_STATUS_FAILED, 0),
        'failed' => array(self::MSG_STATUS_FAILED, 0),
    );

    public function getName()
    {
        return self::PROVIDER_NAME;
    }

    public function getRequiredParams()
    {
        return self::$REQUIRED_PARAMETERS;
    }

    public function setAuthParameters($userName, $password)
    {
        // The API authenticates with accountnumber + apikey only: the account e-mail and
        // password the manual's form asks for stay in Vtiger and are never sent anywhere.
        $this->userName = (string) $userName;
        $this->password = (string) $password;
    }

    public function setParameter($key, $value)
    {
        $this->parameters[(string) $key] = $value;
    }

    public function getParameter($key, $defaultValue = false)
    {
        if (isset($this->parameters[$key])) {
            return $this->parameters[$key];
        }
        // Older Vtiger builds saved form fields under their label ("Apikey"): accept any case.
        foreach ($this->parameters as $name => $value) {
            if (strcasecmp($name, $key) === 0) {
                return $value;
            }
        }
        return $defaultValue;
    }

    /**
     * The platform's API base, whatever the user pasted: "my.unityvox.com",
     * "https://my.unityvox.com", or the full endpoint ".../api/get-api/v1/" (even with an
     * endpoint name after it) all give "https://my.unityvox.com/api/get-api/v1/".
     */
    public function getBaseURL()
    {
        $url = trim((string) $this->getParameter('url', ''));
        if ($url === '') {
            $url = self::DEFAULT_URL;
        }
        if (strpos($url, '://') === false) {
            $url = 'https://' . ltrim($url, '/');
        }
        $url = preg_replace('/[?#].*$/s', '', $url);
        $cut = stripos($url, '/api/get-api/');
        if ($cut !== false) {
            $url = substr($url, 0, $cut);
        }
        return rtrim($url, '/') . self::API_PATH;
    }

    public function getServiceURL($type = false)
    {
        $base = $this->getBaseURL();
        switch (strtoupper((string) $type)) {
            case self::SERVICE_SEND:
                return $base . 'sms-api';
            case self::SERVICE_QUERY:
                return $base . 'sms-api/status';
            case self::SERVICE_PING:
            case self::SERVICE_AUTH:
                return $base . 'balance';
        }
        return $base;
    }

    /**
     * Sends one text to every number and returns one row per number, in Vtiger's shape:
     * error, to, id, status, statusmessage. A 009 reply (no balance: the platform keeps the
     * message queued until a top-up) is not an error, so Vtiger keeps looking it up.
     */
    public function send($message, $toNumbers)
    {
        $numbers = $this->cleanNumbers($toNumbers);
        $results = array();
        if (!$numbers) {
            return $results;
        }
        $text = $this->cleanText($message);
        foreach (array_chunk($numbers, self::MAX_RECIPIENTS) as $chunk) {
            $reply = $this->call(self::SERVICE_SEND, array(
                'accountnumber' => (string) $this->getParameter('accountnumber', ''),
                'apikey' => (string) $this->getParameter('apikey', ''),
                'from' => trim((string) $this->getParameter('from', '')),
                'to' => implode(',', $chunk),
                'text' => $text,
            ));
            foreach ($this->sendRows($chunk, $reply) as $row) {
                $results[] = $row;
            }
        }
        return $results;
    }

    /**
     * Status of one message, from sms-api/status. A failed lookup is an error row; it asks
     * Vtiger to try again later unless the platform says the id does not exist (010).
     */
    public function query($messageId)
    {
        $reply = $this->call(self::SERVICE_QUERY, array(
            'accountnumber' => (string) $this->getParameter('accountnumber', ''),
            'apikey' => (string) $this->getParameter('apikey', ''),
            'messageId' => (string) $messageId,
        ));
        if ($reply['error'] !== null) {
            return $this->queryRow(true, self::MSG_STATUS_FAILED, 1, $reply['error']);
        }
        $body = $reply['json'];
        if (!is_array($body) || !isset($body['code'])) {
            return $this->queryRow(true, self::MSG_STATUS_FAILED, 1, $this->unexpected($reply));
        }
        $code = (string) $body['code'];
        $text = $this->describe($body);
        $state = isset($body['state']) && is_scalar($body['state']) ? strtolower((string) $body['state']) : '';

        $success = $this->isSuccess($body, $reply['http']);
        // The message's state is the finer answer: after 013 "SMS Sent" the platform keeps
        // code 013 and reports the delivery receipt as state delivered/undelivered/...
        if ($success && $state !== '' && isset(self::$STATES[$state])) {
            list($status, $lookup) = self::$STATES[$state];
            return $this->queryRow(false, $status, $lookup, $this->describeState($body, $text));
        }
        if (isset(self::$STATUS_CODES[$code])) {
            list($status, $lookup) = self::$STATUS_CODES[$code];
            return $this->queryRow(false, $status, $lookup, $text);
        }
        if (isset(self::$FINAL_CODES[$code])) {
            list($status, $lookup) = self::$FINAL_CODES[$code];
            return $this->queryRow(false, $status, $lookup, $text);
        }
        if ($success) {
            // A final state we do not know by code or state name: judge by the words.
            list($status, $lookup) = $this->guessFromText(
                isset($body['statusmessage']) ? (string) $body['statusmessage'] : ''
            );
            return $this->queryRow(false, $status, $lookup, $text);
        }
        // 010 (unknown id) will never change; anything else (bad key, 500...) may be fixed.
        $lookup = ($code === '010') ? 0 : 1;
        return $this->queryRow(true, self::MSG_STATUS_FAILED, $lookup, $text);
    }

    /* ----------------------------------------------------------------------------------- */

    /**
     * Numbers arrive as an array (Vtiger) or a comma-separated string, typed by people:
     * "+1 (305) 888-8888", "+1 305.888.8888", "0058 412 ...". Keep the digits and a leading "+",
     * turn an international "00" prefix into "+", drop empties and repeats (a contact whose
     * mobile and phone are the same number is texted, and charged, once).
     */
    protected function cleanNumbers($toNumbers)
    {
        if (!is_array($toNumbers)) {
            $toNumbers = preg_split('/[,;]/', (string) $toNumbers);
        }
        $numbers = array();
        foreach ($toNumbers as $raw) {
            if (!is_scalar($raw)) {
                continue;
            }
            foreach (preg_split('/[,;]/', (string) $raw) as $piece) {
                // Separators copied from web pages: no-break space, zero-width space,
                // non-breaking hyphen, en dash. Then plain ASCII separators.
                $number = str_replace(array("\xC2\xA0", "\xE2\x80\x8B", "\xE2\x80\x91", "\xE2\x80\x93"), '', $piece);
                $number = preg_replace('/[\s\-\.\(\)\/]+/', '', $number);
                if ($number === null || $number === '') {
                    continue;
                }
                if (strncmp($number, '00', 2) === 0 && ctype_digit(substr($number, 2))) {
                    $number = '+' . substr($number, 2);
                }
                // "+13058888888" and "13058888888" are the same phone: key on the digits.
                $key = ctype_digit(ltrim($number, '+')) ? ltrim($number, '+') : $number;
                if (!isset($numbers[$key])) {
                    $numbers[$key] = $number;
                }
            }
        }
        return array_values($numbers);
    }

    /** Vtiger keeps form input HTML-escaped ("&amp;"); the phone must show the real character. */
    protected function cleanText($message)
    {
        $text = html_entity_decode((string) $message, ENT_QUOTES | ENT_HTML5, 'UTF-8');
        return trim($text);
    }

    /** Turns one send reply into one Vtiger row per number of the request. */
    protected function sendRows(array $numbers, array $reply)
    {
        if ($reply['error'] !== null) {
            return $this->errorRows($numbers, $reply['error']);
        }
        $body = $reply['json'];
        if (!is_array($body)) {
            return $this->errorRows($numbers, $this->unexpected($reply));
        }
        $items = $this->recipientItems($body);
        if ($items === null) {
            // One flat object: either the single recipient's result or an error for the
            // whole request (bad key, missing variables, empty text, too many numbers...).
            if (count($numbers) === 1 && isset($body['code'])) {
                return array($this->recipientRow($numbers[0], $body, $reply['http']));
            }
            $why = isset($body['code']) ? $this->describe($body) : $this->unexpected($reply);
            return $this->errorRows($numbers, $why);
        }
        $rows = array();
        $byNumber = array();
        foreach ($items as $item) {
            if (is_array($item) && isset($item['to']) && is_scalar($item['to'])) {
                $byNumber[$this->digits((string) $item['to'])][] = $item;
            }
        }
        foreach ($numbers as $i => $number) {
            $item = null;
            $key = $this->digits($number);
            if ($key !== '' && !empty($byNumber[$key])) {
                $item = array_shift($byNumber[$key]);
            } elseif (count($items) === count($numbers) && is_array($items[$i])) {
                $item = $items[$i];      // same order as sent, e.g. a malformed number echoed raw
            }
            if ($item === null) {
                $rows[] = $this->errorRow($number, 'UVox returned no result for this number');
            } else {
                $rows[] = $this->recipientRow($number, $item, $reply['http']);
            }
        }
        return $rows;
    }

    /**
     * The per-recipient list of a several-recipient reply: a bare JSON array, or the first
     * list of objects inside the envelope (the platform calls it "results"). Null when the
     * reply is one flat object.
     */
    protected function recipientItems(array $body)
    {
        if ($body && array_keys($body) === range(0, count($body) - 1)) {
            return array_values($body);
        }
        foreach (array('results', 'messages', 'recipients', 'data') as $key) {
            if (isset($body[$key]) && is_array($body[$key])) {
                return array_values($body[$key]);
            }
        }
        return null;
    }

    /** One recipient's result: 005/009 accepted (Processing), anything else a failed row. */
    protected function recipientRow($number, array $item, $httpCode)
    {
        $code = isset($item['code']) ? (string) $item['code'] : '';
        $id = isset($item['id']) && is_scalar($item['id']) ? (string) $item['id'] : '';
        $to = isset($item['to']) && is_scalar($item['to']) && (string) $item['to'] !== '' ? (string) $item['to'] : $number;
        $accepted = ($code === '005' || $code === '009')
            || ($id !== '' && $code === '' && $this->isSuccess($item, $httpCode));
        if ($accepted && $id !== '') {
            return array(
                'error' => false,
                'to' => $this->fit($to, self::MAX_TO),
                'id' => $this->fit($id, self::MAX_ID),
                'status' => self::MSG_STATUS_PROCESSING,
                'statusmessage' => $this->fit($this->describe($item), self::MAX_MESSAGE),
            );
        }
        return $this->errorRow($to, $this->describe($item));
    }

    protected function errorRows(array $numbers, $why)
    {
        $rows = array();
        foreach ($numbers as $number) {
            $rows[] = $this->errorRow($number, $why);
        }
        return $rows;
    }

    protected function errorRow($number, $why)
    {
        return array(
            'error' => true,
            'to' => $this->fit((string) $number, self::MAX_TO),
            'id' => '',
            'status' => self::MSG_STATUS_FAILED,
            'statusmessage' => $this->fit($why, self::MAX_MESSAGE),
        );
    }

    protected function queryRow($error, $status, $needLookup, $why)
    {
        return array(
            'error' => (bool) $error,
            'status' => $this->fit($status, self::MAX_STATUS),
            'needlookup' => (int) $needLookup,
            'statusmessage' => $this->fit($why, self::MAX_MESSAGE),
        );
    }

    /** "UVox 001: API Key Invalid or Not Available" - the code helps the operator's support. */
    protected function describe(array $body)
    {
        $code = isset($body['code']) && is_scalar($body['code']) ? (string) $body['code'] : '';
        $text = isset($body['statusmessage']) && is_scalar($body['statusmessage']) ? trim((string) $body['statusmessage']) : '';
        if ($text === '' && isset($body['resultstring']) && is_scalar($body['resultstring'])) {
            $text = (string) $body['resultstring'];
        }
        if ($text === '') {
            $text = 'no message';
        }
        // The platform may say more than the manual's fixed text ("detail"): keep it, it
        // tells the CRM admin what to fix (e.g. which rule the From field breaks).
        if (isset($body['detail']) && is_scalar($body['detail']) && trim((string) $body['detail']) !== '') {
            $text .= ': ' . trim((string) $body['detail']);
        }
        return $code === '' ? 'UVox: ' . $text : 'UVox ' . $code . ': ' . $text;
    }

    /**
     * "UVox 013: SMS Sent - Undelivered", "UVox 114: Failed: SMSC refused submit_sm: ...":
     * the final state and, when the carrier gave one, its reason.
     */
    protected function describeState(array $body, $text)
    {
        $main = isset($body['statusmessage']) && is_scalar($body['statusmessage']) ? (string) $body['statusmessage'] : '';
        if (isset($body['statetext']) && is_scalar($body['statetext']) && (string) $body['statetext'] !== $main) {
            $text .= ' - ' . $body['statetext'];
        }
        if (isset($body['error']) && is_string($body['error']) && trim($body['error']) !== '') {
            $text .= ': ' . trim($body['error']);
        }
        return $text;
    }

    protected function unexpected(array $reply)
    {
        return 'UVox replied HTTP ' . $reply['http'] . ' without a UVox answer; check the UVox address';
    }

    protected function isSuccess(array $body, $httpCode)
    {
        if (isset($body['status']) && is_scalar($body['status'])) {
            $status = strtolower((string) $body['status']);
            if ($status === 'error') {
                return false;
            }
            if ($status === 'success' || $status === 'no_plan') {
                return true;
            }
        }
        return $httpCode >= 200 && $httpCode < 300;
    }

    /** For a success code this provider does not know yet: read the platform's own words. */
    protected function guessFromText($text)
    {
        $text = strtolower($text);
        foreach (array('undeliver', 'fail', 'expire', 'reject') as $word) {
            if (strpos($text, $word) !== false) {
                return array(self::MSG_STATUS_FAILED, 0);
            }
        }
        if (strpos($text, 'deliver') !== false) {
            return array(self::MSG_STATUS_DELIVERED, 0);
        }
        if (strpos($text, 'sent') !== false) {
            return array(self::MSG_STATUS_DISPATCHED, 1);
        }
        return array(self::MSG_STATUS_PROCESSING, 1);
    }

    protected function digits($number)
    {
        return preg_replace('/\D+/', '', (string) $number);
    }

    /** Cuts to a Vtiger column width, on a character boundary when the text is UTF-8. */
    protected function fit($value, $width)
    {
        $value = (string) $value;
        if (strlen($value) <= $width) {
            return $value;
        }
        $cut = substr($value, 0, $width);
        if (preg_match('//u', $value)) {
            // Drop a trailing partial UTF-8 sequence rather than store broken bytes.
            while ($cut !== '' && !preg_match('//u', $cut)) {
                $cut = substr($cut, 0, -1);
            }
        }
        return $cut;
    }

    /* ----------------------------------------------------------------------------------- */

    /**
     * One POST to the platform. Returns array('http' => int, 'json' => mixed|null,
     * 'body' => string, 'error' => null|string); 'error' is set only when no HTTP answer came.
     *
     * Why PHP's curl rather than Vtiger_Net_Client: Vtiger 7's client (PEAR HTTP_Request)
     * answers a failure with a bare false, giving the user no reason, and its timeout only
     * bounds the socket connect, not a server that accepts and then hangs. curl gives a
     * connect and a total deadline and says what went wrong, and Vtiger 7 and 8 both require
     * the curl extension anyway. Hosts without it still work through Vtiger_Net_Client.
     * POST keeps the key and the text out of web-server access logs.
     */
    protected function call($type, array $variables)
    {
        $url = $this->getServiceURL($type);
        $timeout = (int) $this->getParameter('timeout', self::TOTAL_TIMEOUT);
        if ($timeout < 1) {
            $timeout = self::TOTAL_TIMEOUT;
        }
        if (function_exists('curl_init')) {
            return $this->callWithCurl($url, $variables, $timeout);
        }
        if (class_exists('Vtiger_Net_Client')) {
            return $this->callWithVtigerClient($url, $variables, $timeout);
        }
        return $this->reply(0, '', 'UVox: this PHP has neither the curl extension nor Vtiger_Net_Client');
    }

    protected function callWithCurl($url, array $variables, $timeout)
    {
        $handle = curl_init();
        if ($handle === false) {
            return $this->reply(0, '', 'UVox: could not start an HTTP request (curl)');
        }
        curl_setopt_array($handle, array(
            CURLOPT_URL => $url,
            CURLOPT_POST => true,
            CURLOPT_POSTFIELDS => http_build_query($variables, '', '&'),
            CURLOPT_HTTPHEADER => array(
                'Accept: application/json',
                'Content-Type: application/x-www-form-urlencoded; charset=UTF-8',
            ),
            CURLOPT_USERAGENT => $this->userAgent(),
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_HEADER => false,
            CURLOPT_FOLLOWLOCATION => false,
            CURLOPT_CONNECTTIMEOUT => min(self::CONNECT_TIMEOUT, $timeout),
            CURLOPT_TIMEOUT => $timeout,
            CURLOPT_NOSIGNAL => true,
            CURLOPT_SSL_VERIFYPEER => true,
            CURLOPT_SSL_VERIFYHOST => 2,
        ));
        $body = curl_exec($handle);
        if ($body === false) {
            $why = curl_error($handle);
            $errno = curl_errno($handle);
            curl_close($handle);
            if ($errno === CURLE_OPERATION_TIMEDOUT) {
                return $this->reply(0, '', 'UVox did not answer within ' . $timeout . ' s (' . $why . ')');
            }
            return $this->reply(0, '', 'UVox unreachable: ' . $why);
        }
        $http = (int) curl_getinfo($handle, CURLINFO_RESPONSE_CODE);
        curl_close($handle);
        return $this->reply($http, (string) $body, null);
    }

    protected function callWithVtigerClient($url, array $variables, $timeout)
    {
        try {
            $client = new Vtiger_Net_Client($url);
            $client->setHeaders(array('Accept' => 'application/json', 'User-Agent' => $this->userAgent()));
            $body = $client->doPost($variables, $timeout);
        } catch (Throwable $e) {
            return $this->reply(0, '', 'UVox unreachable: ' . $e->getMessage());
        }
        if ($body === false || $body === null) {
            return $this->reply(0, '', 'UVox unreachable at ' . $url . ' (no answer)');
        }
        // Vtiger_Net_Client hands back the body of any answer but not its status code.
        return $this->reply(200, (string) $body, null);
    }

    protected function reply($http, $body, $error)
    {
        $json = null;
        if ($error === null && $body !== '') {
            $json = json_decode($body, true, 32, JSON_BIGINT_AS_STRING);
        }
        return array('http' => $http, 'body' => $body, 'json' => $json, 'error' => $error);
    }

    protected function userAgent()
    {
        return 'UVox-Vtiger/' . self::VERSION . ' PHP/' . PHP_VERSION;
    }
}
